"""`python -m offchain.workers`: the same as `emc worker`."""

from offchain.workers.cli import worker

worker()
