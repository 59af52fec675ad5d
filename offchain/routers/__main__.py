"""`python -m offchain.routers`: the same as `emc router`."""

from offchain.routers.router_cli import router

router()
