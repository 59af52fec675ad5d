"""`python -m offchain.routers`: the same as `emc router`."""

from offchain.routers.cli import router

router()
