"""`python -m offchain.workers`: the same as `emc worker`."""

from offchain.workers.worker_cli import worker

worker()
