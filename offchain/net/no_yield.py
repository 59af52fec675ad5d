"""A lock and a semaphore that take a free slot without a trip through trio's scheduler.

trio's own ``acquire`` always yields, even when the lock is free: a pass of the run loop
(an ``epoll_wait`` and a reschedule) on paths that otherwise do microseconds of work. These
yield only when they must wait. Mutual exclusion is the same; what changes is that a free
acquire is not a checkpoint, so code that relies on it to let other tasks run must
checkpoint elsewhere (every socket operation does).
"""

import trio


class NoYieldLock:
    """A lock for trio tasks that takes a free lock without a trip through the scheduler.

    Its own small implementation, not trio's ``Lock`` (whose classes are final, and whose
    free acquire also registers the owner for deadlock detection, a dozen Python calls on a
    path taken several times per message). Waiters park in FIFO order and a release hands
    the lock straight to the first of them, as trio's lock does. It does not track which
    task holds it: release it only from the task that acquired it.
    """

    def __init__(self) -> None:
        self._held = False
        self._waiters = trio.lowlevel.ParkingLot()

    async def acquire(self) -> None:
        """Take the lock; yield to the scheduler only if it is held."""
        if self._held:
            await self._waiters.park()  # woken holding it: release hands it over
        else:
            self._held = True

    def acquire_nowait(self) -> None:
        """Take the lock or raise ``trio.WouldBlock``."""
        if self._held:
            raise trio.WouldBlock
        self._held = True

    def release(self) -> None:
        """Release the lock, handing it to the longest waiter if there is one."""
        if not self._held:
            raise RuntimeError("release of a NoYieldLock that is not held")
        if self._waiters:
            self._waiters.unpark()
        else:
            self._held = False

    def locked(self) -> bool:
        """Return whether someone holds the lock."""
        return self._held

    def statistics(self) -> trio.LockStatistics:
        """Return trio-style statistics (the owner is not tracked: ``owner`` is None)."""
        return trio.LockStatistics(locked=self._held, owner=None, tasks_waiting=len(self._waiters))

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


class NoYieldSemaphore:
    """A trio semaphore that takes a free slot without a trip through the scheduler."""

    def __init__(self, value: int, max_value: int | None = None) -> None:
        self._semaphore = trio.Semaphore(value, max_value=max_value)

    @property
    def value(self) -> int:
        """Return the number of free slots."""
        return self._semaphore.value

    @property
    def max_value(self) -> int | None:
        """Return the most slots the semaphore may have, if bounded."""
        return self._semaphore.max_value

    async def acquire(self) -> None:
        """Take a slot; yield to the scheduler only if none is free."""
        try:
            self._semaphore.acquire_nowait()
        except trio.WouldBlock:
            await self._semaphore.acquire()

    def acquire_nowait(self) -> None:
        """Take a slot or raise ``trio.WouldBlock``."""
        self._semaphore.acquire_nowait()

    def release(self) -> None:
        """Give a slot back."""
        self._semaphore.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()
