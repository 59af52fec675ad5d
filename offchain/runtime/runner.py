"""Running an agent as a process: stop cleanly on SIGTERM or SIGINT."""

import logging
import signal
from collections.abc import Awaitable, Callable

import trio

logger = logging.getLogger(__name__)


async def run_until_signal(serve: Callable[[trio.Event], Awaitable[None]]) -> None:
    """Run ``serve(stop)`` and set ``stop`` when the process gets SIGTERM or SIGINT."""
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    logger.info("got %s, shutting down", signal.Signals(signum).name)
                    stop.set()
                    return

            nursery.start_soon(watch)
            await serve(stop)
            nursery.cancel_scope.cancel()
