"""Stream helpers shared by the agents: the network errors to expect, sending, closing."""

import functools
import logging

import trio
from libp2p.abc import IHost, INetStream
from libp2p.exceptions import BaseLibp2pError
from libp2p.io.exceptions import IOException
from libp2p.peer.id import ID

from offchain.protocol.wire import Message, encode

logger = logging.getLogger(__name__)

# What a peer vanishing, a reset or a refused dial can raise out of py-libp2p and trio.
NET_ERRORS: tuple[type[BaseException], ...] = (
    BaseLibp2pError,
    IOException,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    OSError,
    EOFError,
)


@functools.lru_cache(maxsize=8_192)
def peer_id(base58: str) -> ID:
    """Return the ``ID`` for a base58 peer id (cached: decoding base58 is pure Python)."""
    return ID.from_base58(base58)


def remote_peer(stream: INetStream) -> str:
    """Return the peer id (base58) at the other end of ``stream``."""
    return stream.muxed_conn.peer_id.to_string()


async def send(stream: INetStream, message: Message) -> None:
    """Write one message frame to ``stream``."""
    await stream.write(encode(message))


async def close_quietly(stream: INetStream) -> None:
    """Close ``stream``, ignoring a peer that has already gone (runs even when cancelled)."""
    with trio.CancelScope(shield=True), trio.move_on_after(2):
        try:
            await stream.close()
        except NET_ERRORS as exc:
            logger.debug("close of a stream to %s failed: %s", _peer_or_unknown(stream), exc)


async def reset_quietly(stream: INetStream) -> None:
    """Reset ``stream`` (used to drop a misbehaving peer's stream), ignoring errors."""
    with trio.CancelScope(shield=True), trio.move_on_after(2):
        try:
            await stream.reset()
        except NET_ERRORS as exc:
            logger.debug("reset of a stream to %s failed: %s", _peer_or_unknown(stream), exc)


def _peer_or_unknown(stream: INetStream) -> str:
    try:
        return remote_peer(stream)
    except AttributeError:
        return "?"


async def close_all_connections(host: IHost, timeout_s: float = 5.0) -> None:
    """Close every connection of ``host`` at once, giving up after ``timeout_s``.

    py-libp2p closes connections one after another on shutdown, with a pause in each, which
    takes minutes for a router holding thousands; this closes them concurrently first.
    """
    connections = host.get_network().get_connections()
    if not connections:
        return

    async def close(conn: object) -> None:
        try:
            await conn.close()  # type: ignore[attr-defined]
        except NET_ERRORS as exc:
            logger.debug("closing a connection failed: %s", exc)

    with trio.CancelScope(shield=True), trio.move_on_after(timeout_s):
        async with trio.open_nursery() as nursery:
            for conn in connections:
                nursery.start_soon(close, conn)


SHUTDOWN_GRACE_S = 1.0


async def shut_down(host: IHost, teardown: trio.CancelScope) -> None:
    """Close the host's connections, then bound the rest of its teardown.

    Called inside ``host.run()``; ``teardown`` is a cancel scope around it, given a deadline
    so that py-libp2p's own sequential cleanup cannot hold a stopping agent for minutes.
    """
    count = len(host.get_network().get_connections())
    await close_all_connections(host)
    logger.info("closed %d connections", count)
    teardown.deadline = trio.current_time() + SHUTDOWN_GRACE_S
