"""Constant-time parent lookup for py-libp2p's service tasks (a router accepts in O(1), not O(n)).

Every ``manager.run_task`` in py-libp2p 0.8.1 looks for the service task the caller runs in by
walking the manager's whole task tree (``TrioManager._find_parent_task``). The swarm starts two
such tasks per accepted connection from the listener's task, which is in no tree, so each accept
walks every task of every connection held: a router with 1,000 nodes spent 15 % of its CPU there
during a reconnect storm, and the cost grows with each connection it holds.

``install()`` keeps an index from trio task to the service task running in it and answers the
lookup from it, with the same result: the service task of the current trio task if it belongs to
this manager's tree, else None (a new root task).
"""

import functools

import trio
from libp2p.tools.anyio_service.trio_manager import TrioManager
from libp2p.tools.anyio_service.trio_tasks import FunctionTask

_running: dict[trio.lowlevel.Task, FunctionTask] = {}
# The library's tree walk, kept so tests can check the index gives the same answers.
library_find_parent_task = TrioManager._find_parent_task


def _find_parent_task(self: TrioManager, trio_task: trio.lowlevel.Task) -> FunctionTask | None:
    task = _running.get(trio_task)
    if task is None:
        return None
    root = task
    while root.parent is not None:
        root = root.parent  # type: ignore[assignment]
    return task if root in self._root_tasks else None


def _indexed_run(run):  # noqa: ANN001, ANN202 - wraps FunctionTask.run
    @functools.wraps(run)
    async def indexed(self: FunctionTask) -> None:
        trio_task = trio.lowlevel.current_task()
        _running[trio_task] = self
        try:
            await run(self)
        finally:
            _running.pop(trio_task, None)

    indexed.__emc_indexed__ = True  # type: ignore[attr-defined]
    return indexed


def install() -> None:
    """Make service-task parent lookups use the index (idempotent)."""
    if getattr(FunctionTask.run, "__emc_indexed__", False):
        return
    FunctionTask.run = _indexed_run(FunctionTask.run)  # type: ignore[method-assign]
    TrioManager._find_parent_task = _find_parent_task  # type: ignore[method-assign]


def running_tasks() -> int:
    """Return how many service tasks are indexed as running (for tests)."""
    return len(_running)
