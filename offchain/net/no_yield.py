"""A lock and a semaphore that take a free slot without a trip through trio's scheduler.

trio's own ``acquire`` always yields, even when the lock is free: a pass of the run loop
(an ``epoll_wait`` and a reschedule) on paths that otherwise do microseconds of work. These
yield only when they must wait. Mutual exclusion is the same; what changes is that a free
acquire is not a checkpoint, so code that relies on it to let other tasks run must
checkpoint elsewhere (every socket operation does).
"""

import trio


class NoYieldLock:
    """A trio lock that takes a free lock without a trip through the scheduler.

    A wrapper, not a subclass: trio's lock classes are final.
    """

    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def acquire(self) -> None:
        """Take the lock; yield to the scheduler only if it is held."""
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    def acquire_nowait(self) -> None:
        """Take the lock or raise ``trio.WouldBlock``."""
        self._lock.acquire_nowait()

    def release(self) -> None:
        """Release the lock (its holder only)."""
        self._lock.release()

    def locked(self) -> bool:
        """Return whether someone holds the lock."""
        return self._lock.locked()

    def statistics(self) -> object:
        """Return trio's statistics for the lock."""
        return self._lock.statistics()

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
