"""Locks that do not yield when free: same exclusion as trio's, fewer scheduler trips."""

import pytest
import trio

from offchain.net.no_yield import NoYieldLock, NoYieldSemaphore


async def test_no_yield_lock__free_acquire_does_not_checkpoint_held_acquire_waits():
    lock, stock = NoYieldLock(), trio.Lock()
    with trio.CancelScope() as scope:
        scope.cancel()
        await lock.acquire()  # no checkpoint, so the pending cancel is not delivered here
        lock.release()
        with pytest.raises(trio.Cancelled):
            await stock.acquire()  # trio's lock checkpoints even when free
    order: list[str] = []

    async def holder(task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
        async with lock:
            task_status.started()
            await trio.sleep(0.05)
            order.append("holder done")

    async def waiter() -> None:
        async with lock:
            order.append("waiter in")

    async with trio.open_nursery() as nursery:
        await nursery.start(holder)
        assert lock.locked()
        nursery.start_soon(waiter)
    assert order == ["holder done", "waiter in"]
    assert not lock.locked()


async def test_no_yield_lock__mutual_exclusion_under_contention():
    lock = NoYieldLock()
    inside = 0
    most = 0

    async def worker() -> None:
        nonlocal inside, most
        for _ in range(20):
            async with lock:
                inside += 1
                most = max(most, inside)
                await trio.sleep(0)
                inside -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(worker)
    assert most == 1


async def test_no_yield_semaphore__counts_like_a_semaphore():
    semaphore = NoYieldSemaphore(1, max_value=1)
    await semaphore.acquire()
    assert semaphore.value == 0
    with pytest.raises(trio.WouldBlock):
        semaphore.acquire_nowait()
    semaphore.release()
    assert semaphore.value == 1
    with pytest.raises(ValueError):
        semaphore.release()
