"""Stream helpers shared by the agents: the network errors to expect, sending, closing."""

import logging

import trio
from libp2p.abc import INetStream
from libp2p.exceptions import BaseLibp2pError
from libp2p.io.exceptions import IOException

from offchain.net.messages import Message, encode

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
