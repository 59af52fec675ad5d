"""The indexed parent lookup gives the library's answers for nested, root and foreign tasks."""

import trio
from libp2p.tools.anyio_service import Service, background_trio_service
from libp2p.tools.anyio_service.trio_tasks import FunctionTask

from offchain.net.libp2p_patches import task_index
from tests.waiting import wait_until

task_index.install()


class Tree(Service):
    """A service whose tasks start children, and one child service, then park."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.seen: list[tuple[str, object, object]] = []  # (name, indexed, library)
        self.parked = trio.Event()
        self.release = trio.Event()
        self.started = 0

    def _check(self, name: str) -> None:
        current = trio.lowlevel.current_task()
        self.seen.append(
            (
                name,
                self.manager._find_parent_task(current),
                task_index.library_find_parent_task(self.manager, current),
            )
        )

    async def _level(self, level: int) -> None:
        self._check(f"level{level}")
        if level < self.depth:
            self.manager.run_task(self._level, level + 1)
        self.started += 1
        await self.release.wait()

    async def run(self) -> None:
        self._check("service")
        self.manager.run_task(self._level, 1)
        self.manager.run_task(self._level, 1)
        await self.release.wait()


async def test_lookup_matches_the_tree_walk_at_every_depth():
    tree = Tree(depth=4)
    async with background_trio_service(tree) as manager:
        await wait_until(lambda: tree.started >= 8, "8 tasks started", timeout_s=5)
        # From a trio task outside the service's tree: a new root task, by both lookups.
        outside = trio.lowlevel.current_task()
        assert manager._find_parent_task(outside) is None
        assert task_index.library_find_parent_task(manager, outside) is None
        tree.release.set()
    names = [name for name, _, _ in tree.seen]
    assert names.count("level4") == 2
    for name, indexed, library in tree.seen:
        assert indexed is library, name
        if name.startswith("level"):
            assert isinstance(indexed, FunctionTask), name


async def test_a_task_of_another_manager_is_not_a_parent():
    first, second = Tree(depth=1), Tree(depth=1)
    async with background_trio_service(first) as one, background_trio_service(second) as two:
        await wait_until(
            lambda: first.started >= 2 and second.started >= 2, "both trees started", timeout_s=5
        )
        for task in list(task_index._running):
            # Each running service task is found by its own manager and by no other.
            owner = task_index._running[task]
            mine = one._find_parent_task(task) or two._find_parent_task(task)
            assert mine is owner
            assert one._find_parent_task(task) is task_index.library_find_parent_task(one, task)
            assert two._find_parent_task(task) is task_index.library_find_parent_task(two, task)
        first.release.set()
        second.release.set()


async def test_finished_tasks_leave_the_index():
    before = task_index.running_tasks()
    tree = Tree(depth=3)
    async with background_trio_service(tree):
        await wait_until(lambda: tree.started >= 6, "6 tasks started", timeout_s=5)
        assert task_index.running_tasks() >= before + 6
        tree.release.set()
    assert task_index.running_tasks() == before
