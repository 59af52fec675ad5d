"""Locks that do not yield when free: same exclusion as trio's, fewer scheduler trips."""

import pytest
import trio
import trio.testing

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
            await trio.testing.wait_all_tasks_blocked()  # the waiter is queued on the lock
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
                await trio.lowlevel.checkpoint()
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


async def test_no_yield_lock__waiters_get_it_in_order_and_a_cancelled_waiter_never_holds_it():
    lock = NoYieldLock()
    order: list[str] = []

    async def waiter(name: str, task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
        with trio.CancelScope() as scope:
            task_status.started(scope)
            async with lock:
                order.append(name)

    await lock.acquire()
    async with trio.open_nursery() as nursery:
        await nursery.start(waiter, "first")
        cancelled = await nursery.start(waiter, "cancelled")
        await nursery.start(waiter, "third")
        await trio.testing.wait_all_tasks_blocked()
        assert lock.statistics().tasks_waiting == 3
        cancelled.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert lock.statistics().tasks_waiting == 2
        lock.release()  # handed to "first", then "third"
    assert order == ["first", "third"]
    assert not lock.locked()


async def test_no_yield_lock__release_when_free_is_an_error():
    lock = NoYieldLock()
    with pytest.raises(RuntimeError):
        lock.release()
    lock.acquire_nowait()
    with pytest.raises(trio.WouldBlock):
        lock.acquire_nowait()
    lock.release()
    assert not lock.locked()
