"""Waiting on a condition with a deadline: the one way tests wait for something to happen.

Tests never sleep for a guessed time. They wait on an event, or, where the condition lives in
another task, thread or process and offers no event, poll it here until it holds or the
deadline passes, and then fail with what they were waiting for.
"""

import inspect
import time
from collections.abc import Awaitable, Callable

import pytest
import trio

POLL_S = 0.01


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]],
    what: str,
    timeout_s: float = 30.0,
    in_thread: bool = False,
) -> float:
    """Poll ``check`` until it is true; return the seconds it took, or fail the test.

    ``check`` may be a coroutine function (a request whose answer is the condition).
    ``in_thread`` runs each check in a worker thread (for checks that block, such as a
    process's log file or an RPC call).
    """
    started = trio.current_time()
    interval = POLL_S * 10 if in_thread else POLL_S
    with trio.move_on_after(timeout_s):
        while True:
            holds = await trio.to_thread.run_sync(check) if in_thread else check()
            if inspect.isawaitable(holds):
                holds = await holds
            if holds:
                return trio.current_time() - started
            await trio.sleep(interval)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


def wait_until_sync(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> float:
    """Blocking form of ``wait_until``, for fixtures and synchronous tests."""
    started = time.monotonic()
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        if check():
            return time.monotonic() - started
        time.sleep(POLL_S * 10)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
