"""Reusable request streams: one request at a time per stream, idle streams kept per peer.

Opening a libp2p stream costs several round trips of multistream negotiation and several
times the CPU of a request on an open stream in py-libp2p (DESIGN.md section 8), so streams
are kept open and requests sent one after another. Used by ``bench/router.py`` as the raw
baseline.
"""

import logging
from collections import defaultdict, deque
from dataclasses import dataclass

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from offchain.net.framing import FrameReader, receive
from offchain.net.libp2p_patches.lean_yamux import lean_net_stream
from offchain.net.streams import NET_ERRORS, close_quietly, reset_quietly, send
from offchain.protocol.frames import Truncated
from offchain.protocol.wire import Request, Response

logger = logging.getLogger(__name__)

# Servers wait this long for the next request on an idle stream; pools drop streams idle for
# half of it, so a pooled stream is never one the server has already given up on.
SERVER_IDLE_S = 120.0
POOL_IDLE_S = SERVER_IDLE_S / 2


@dataclass
class _Idle:
    stream: INetStream
    reader: FrameReader
    since: float


class StreamPool:
    """Sends requests to peers on ``protocol``, reusing idle streams."""

    def __init__(self, host: IHost, protocol: TProtocol, max_idle_per_peer: int = 64) -> None:
        self.host = host
        self.protocol = protocol
        self.max_idle_per_peer = max_idle_per_peer
        self._idle: dict[ID, deque[_Idle]] = defaultdict(deque)
        self.opened = 0

    def _take(self, peer: ID, now: float) -> _Idle | None:
        idle = self._idle.get(peer)
        while idle:
            entry = idle.pop()  # most recently used first
            if now - entry.since < POOL_IDLE_S and not entry.stream.is_closed:
                return entry
        return None

    async def _open(self, peer: ID) -> _Idle:
        stream = lean_net_stream(await self.host.new_stream(peer, [self.protocol]))
        self.opened += 1
        return _Idle(stream, FrameReader(stream), trio.current_time())

    async def request(self, peer: ID, request: Request) -> Response:
        """Return ``peer``'s answer to ``request``; the caller bounds the time it may take.

        A reused stream that turns out to be closed before any answer arrives is replaced by
        a fresh one once; other failures propagate (and the stream is reset, never reused).
        """
        entry = self._take(peer, trio.current_time())
        if entry is not None:
            try:
                return await self._exchange(peer, entry, request)
            except (Truncated, *NET_ERRORS):
                logger.debug("pooled stream to %s was closed; opening a fresh one", peer)
        return await self._exchange(peer, await self._open(peer), request)

    async def _exchange(self, peer: ID, entry: _Idle, request: Request) -> Response:
        try:
            await send(entry.stream, request)
            response = await receive(entry.reader, Response)
        except BaseException:
            await reset_quietly(entry.stream)
            raise
        assert isinstance(response, Response)
        idle = self._idle[peer]
        if len(idle) < self.max_idle_per_peer:
            entry.since = trio.current_time()
            idle.append(entry)
        else:
            await close_quietly(entry.stream)
        return response

    def forget(self, peer: ID) -> None:
        """Drop the idle streams to ``peer`` (it has gone; its streams are dead)."""
        self._idle.pop(peer, None)


class RequestIterator:
    """Yields the requests a peer sends on one stream, one after another.

    The first must arrive within ``first_timeout_s``, each frame must be whole within
    ``frame_timeout_s`` once it starts, and iteration stops after ``idle_timeout_s`` of silence.
    Bad frames and timeouts raise ``FrameError`` or ``trio.TooSlowError`` for the agent to log.
    """

    def __init__(
        self,
        stream: INetStream,
        first_timeout_s: float,
        frame_timeout_s: float,
        idle_timeout_s: float = SERVER_IDLE_S,
    ) -> None:
        self.stream = lean_net_stream(stream)
        self.reader = FrameReader(stream)
        self.first_timeout_s = first_timeout_s
        self.frame_timeout_s = frame_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.count = 0

    def __aiter__(self) -> "RequestIterator":
        return self

    async def __anext__(self) -> Request:
        if self.count == 0:
            with trio.fail_after(self.first_timeout_s):
                request = await receive(self.reader, Request)
        else:
            with trio.move_on_after(self.idle_timeout_s) as idle:
                try:
                    await self.reader.wait_for_data()
                except Truncated:
                    raise StopAsyncIteration from None
            if idle.cancelled_caught:
                raise StopAsyncIteration
            with trio.fail_after(self.frame_timeout_s):
                request = await receive(self.reader, Request)
        self.count += 1
        assert isinstance(request, Request)
        return request
