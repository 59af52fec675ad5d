"""Constant-time parent lookup for py-libp2p's service tasks (a router accepts in O(1), not O(n)).

Every ``manager.run_task`` in py-libp2p 0.8.1 looks for the service task the caller runs in by
walking the manager's whole task tree (``TrioManager._find_parent_task``). The swarm starts two
such tasks per accepted connection from the listener's task, which is in no tree, so each accept
walks every task of every connection held: a router with 1,000 nodes spent 15 % of its CPU there
during a reconnect storm, and the cost grows with each connection it holds.

``install()`` keeps an index from trio task to the service task running in it (filled by
``FunctionTask.run``) and answers the lookup from it, with the same result: the service task of
the current trio task if it belongs to this manager's tree, else None (a new root task).
The upstream change: docs/upstream/task_index.md.
"""

import functools
import inspect

import trio
from libp2p.tools.anyio_service.trio_manager import TrioManager
from libp2p.tools.anyio_service.trio_tasks import FunctionTask

from offchain.net.libp2p_patches.guard import PatchError, require_method, require_pinned_version

NAME = "task_index"

_running: dict[trio.lowlevel.Task, FunctionTask] = {}
# The library's own functions, kept so tests can check the index gives the walk's answers.
library_find_parent_task = TrioManager._find_parent_task
_library_run = FunctionTask.run


def _find_parent_task(self: TrioManager, trio_task: trio.lowlevel.Task) -> FunctionTask | None:
    task = _running.get(trio_task)
    if task is None:
        return None
    root = task
    while root.parent is not None:
        root = root.parent  # type: ignore[assignment]
    return task if root in self._root_tasks else None


@functools.wraps(_library_run)
async def _indexed_run(self: FunctionTask) -> None:
    trio_task = trio.lowlevel.current_task()
    _running[trio_task] = self
    try:
        await _library_run(self)
    finally:
        _running.pop(trio_task, None)


def check_library() -> None:
    """Raise ``PatchError`` unless the lookup and the task entry point are 0.8.1's."""
    require_pinned_version()
    require_method(TrioManager, "_find_parent_task", ("self", "trio_task"))
    require_method(FunctionTask, "run", ("self",))
    # The index walks the tree through these; a rename would make it answer None.
    if "_root_tasks" not in TrioManager.__init__.__code__.co_names:
        raise PatchError(f"{NAME}: TrioManager no longer keeps _root_tasks")
    if not any(
        "parent" in vars(cls)["__init__"].__code__.co_names
        for cls in FunctionTask.__mro__
        if inspect.isfunction(vars(cls).get("__init__"))
    ):
        raise PatchError(f"{NAME}: FunctionTask no longer sets a parent")


def install() -> None:
    """Make service-task parent lookups in every manager use the index (idempotent)."""
    if installed():
        return
    check_library()
    FunctionTask.run = _indexed_run  # type: ignore[method-assign]
    TrioManager._find_parent_task = _find_parent_task  # type: ignore[method-assign]


def installed() -> bool:
    """Return whether the index answers the lookups in this process."""
    return (
        vars(FunctionTask)["run"] is _indexed_run
        and vars(TrioManager)["_find_parent_task"] is _find_parent_task
    )


def verify() -> None:
    """Raise ``PatchError`` unless the index answers the lookups in this process."""
    if not installed():
        raise PatchError(f"{NAME}: TrioManager._find_parent_task is not the indexed lookup")


def running_tasks() -> int:
    """Return how many service tasks are indexed as running."""
    return len(_running)
