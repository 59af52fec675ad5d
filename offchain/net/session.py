"""Pipelined request sessions: many requests in flight on one stream, answers matched by id.

A router talks to each compute node, and a busy caller to each router, over one long-lived
stream instead of a pool of one-request streams. Requests (and answers) that queue up while
the stream is busy go out together in one write, so under load py-libp2p's cost per write (a
yamux frame, a Noise message and a syscall, several times the cost of encoding the message)
is paid once for several messages. With one request in flight a session behaves exactly like
a plain request/response stream. Answers may come back in any order; each names its request.
"""

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from offchain.net.framing import FrameReader, receive
from offchain.net.libp2p_patches.lean_yamux import lean_net_stream
from offchain.net.streams import NET_ERRORS, close_quietly, remote_peer, reset_quietly
from offchain.protocol.frames import FrameError, Oversized, Truncated
from offchain.protocol.wire import Message, Request, Response, encode

logger = logging.getLogger(__name__)

# A server waits this long for the next request while none is in flight; clients drop a
# session idle for half of it, so they never send on one the server has given up on.
SERVER_IDLE_S = 120.0
CLIENT_IDLE_S = SERVER_IDLE_S / 2
# Frames written at once, at most: enough to amortize a write, small enough not to stall
# other streams on the same connection behind one huge yamux frame.
MAX_WRITE_BYTES = 256 * 1_024
# A write that cannot finish in this time (a peer that stopped reading) ends the session.
WRITE_TIMEOUT_S = 30.0
# Frames waiting behind a write, at most (bytes): beyond it senders wait for the queue to
# drain, so a peer that stops reading holds back our reading of its requests instead of
# growing the queue without bound (busy answers and pongs need no in-flight slot).
MAX_QUEUED_BYTES = 8 * 1_024 * 1_024


class SessionEnded(ConnectionError):
    """The session's stream ended or failed before the answer came; ``reason`` says why."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class _Outbox:
    """Writes frames on one stream; frames that queue while a write is under way share the next.

    Whoever sends while no write is under way writes itself, and goes on until the queue is
    empty: with one message in flight that is a plain write with no hand-off to another task.
    When ``others_in_flight()`` says more messages are coming, the writer first lets the other
    ready tasks run once, so that their frames join this write.
    """

    def __init__(
        self,
        stream: INetStream,
        on_failure: Callable[[BaseException], None],
        others_in_flight: Callable[[], bool],
    ) -> None:
        self._stream = stream
        self._on_failure = on_failure
        self._others_in_flight = others_in_flight
        self._queue: deque[tuple[bytes, _Slot | None]] = deque()
        self._queued_bytes = 0
        self._room = trio.Event()
        self._writing = False
        self.failed = False

    async def send(self, frame: bytes, slot: "_Slot | None" = None) -> None:
        """Queue ``frame`` and, unless another task is writing, write all that is queued.

        While more than ``MAX_QUEUED_BYTES`` wait behind a write, wait for room first.
        """
        while self._writing and self._queued_bytes > MAX_QUEUED_BYTES and not self.failed:
            await self._room.wait()
        if self.failed:
            return  # the session is ending; ``on_failure`` has told everyone waiting
        self._queue.append((frame, slot))
        self._queued_bytes += len(frame)
        if self._writing:
            return
        self._writing = True
        try:
            # Shielded: a frame cut short by a cancelled sender would corrupt the stream for
            # every request on it. Bounded instead by WRITE_TIMEOUT_S (one scope for both:
            # trio.fail_after's context manager costs more than the write it guards).
            deadline = trio.current_time() + WRITE_TIMEOUT_S
            with trio.CancelScope(shield=True, deadline=deadline) as scope:
                if self._others_in_flight():
                    await trio.lowlevel.checkpoint()
                while self._queue:
                    await self._write_some()
            if scope.cancelled_caught:
                raise trio.TooSlowError
        except (trio.TooSlowError, *NET_ERRORS) as exc:
            self.failed = True
            self._queue.clear()
            self._queued_bytes = 0
            self._on_failure(exc)
        finally:
            self._writing = False
            self._make_room()

    def _make_room(self) -> None:
        self._room.set()
        self._room = trio.Event()

    async def _write_some(self) -> None:
        frames: list[bytes] = []
        slots: list[_Slot] = []
        size = 0
        while self._queue and size < MAX_WRITE_BYTES:
            frame, slot = self._queue.popleft()
            frames.append(frame)
            size += len(frame)
            if slot is not None:
                slots.append(slot)
        self._queued_bytes -= size
        await self._stream.write(frames[0] if len(frames) == 1 else b"".join(frames))
        for slot in slots:
            slot.written = True
        if self._queued_bytes <= MAX_QUEUED_BYTES:
            self._make_room()


@dataclass(eq=False)
class _Slot:
    """Where the answer to one request in flight lands."""

    done: trio.Event = field(default_factory=trio.Event)
    response: Response | None = None
    error: SessionEnded | None = None
    written: bool = False


class ClientSession:
    """The requesting end of one session stream."""

    def __init__(
        self,
        stream: INetStream,
        reader: FrameReader | None = None,
        *,
        kinds: tuple[type, ...] = (),
        on_message: Callable[[Message], None] | None = None,
        silence_s: Callable[[], float] | None = None,
    ) -> None:
        """Hold a session on ``stream``, read through ``reader`` if one is already reading it.

        A node's link also carries its load reports and pongs: messages of ``kinds`` go to
        ``on_message``. With ``silence_s``, a peer that sends nothing for that long (asked
        again after each message) ends the session as ``timeout``.
        """
        self.stream = lean_net_stream(stream)
        self.closed = False
        self.last_used = trio.current_time()
        self._reader = reader or FrameReader(stream)
        self._outbox = _Outbox(stream, self._write_failed, lambda: len(self._waiting) > 1)
        self._waiting: dict[bytes, _Slot] = {}
        self._end: SessionEnded | None = None
        self._kinds = (Response, *kinds)
        self._on_message = on_message
        self._silence_s = silence_s

    @property
    def in_flight(self) -> int:
        """Return the number of requests waiting for their answers."""
        return len(self._waiting)

    async def run(self) -> SessionEnded:
        """Read answers until the stream ends, fail the requests still waiting, say why it ended."""
        try:
            if self._silence_s is None:
                await self._read()
            else:
                with trio.CancelScope() as self._silence:
                    await self._read()
                if self._silence.cancelled_caught:
                    self._end = SessionEnded("timeout", "peer silent")
        finally:
            self._finish(self._end or SessionEnded("closed", "session stopped"))
            await reset_quietly(self.stream)
        assert self._end is not None
        return self._end

    async def send(self, message: Message) -> None:
        """Write ``message`` (not a request: no answer is awaited) in turn with the requests."""
        await self._outbox.send(encode(message))

    def _write_failed(self, exc: BaseException) -> None:
        # Fail the waiting requests now; the reset makes the reader stop too.
        self._end = SessionEnded("gone", f"write failed: {type(exc).__name__}")
        self._finish(self._end)

    async def _read(self) -> None:
        while True:
            if self._silence_s is not None:
                self._silence.deadline = trio.current_time() + self._silence_s()
            try:
                response = await receive(self._reader, *self._kinds)
            except Truncated as exc:
                self._end = SessionEnded("gone", str(exc))
                return
            except FrameError as exc:
                logger.warning("session to %s sent a bad frame: %s", remote_peer(self.stream), exc)
                self._end = SessionEnded(exc.reason, str(exc))
                return
            if not isinstance(response, Response):
                assert self._on_message is not None
                self._on_message(response)
                continue
            slot = self._waiting.pop(response.request_id, None)
            if slot is None:
                # The caller gave up on it (timeout); the late answer is simply dropped.
                logger.debug("answer to %s came after its caller left", response.request_id.hex())
                continue
            slot.response = response
            slot.done.set()

    def _finish(self, end: SessionEnded) -> None:
        self.closed = True
        waiting, self._waiting = self._waiting, {}
        for slot in waiting.values():
            slot.error = end
            slot.done.set()

    async def request(self, request: Request) -> Response:
        """Return the answer to ``request``; the caller bounds the time it may take.

        Raises ``SessionEnded`` if the stream ends first; ``written`` on the error's slot is
        not exposed, but ``SessionPool`` retries a request that never left this end.
        """
        return await self._request(request, _Slot())

    async def _request(self, request: Request, slot: _Slot) -> Response:
        if self.closed:
            raise SessionEnded("closed", "session already ended")
        if request.request_id in self._waiting:
            raise ValueError(f"request {request.request_id.hex()} is already in flight")
        self._waiting[request.request_id] = slot
        self.last_used = trio.current_time()
        try:
            await self._outbox.send(encode(request), slot)
            await slot.done.wait()
        finally:
            if self._waiting.get(request.request_id) is slot:
                del self._waiting[request.request_id]
        self.last_used = trio.current_time()
        if slot.error is not None:
            raise slot.error
        assert slot.response is not None
        return slot.response

    async def close(self) -> None:
        """End the session: waiting requests fail, the stream is closed."""
        self._finish(SessionEnded("closed", "closed by this end"))
        await close_quietly(self.stream)


class SessionPool:
    """One client session per peer on ``protocol``, opened on first use and reopened after it ends.

    Use as an async context manager: the sessions' reader and writer tasks live inside it.
    With no ``protocol`` the pool opens nothing: it holds only the sessions handed to it with
    ``adopt`` (a router's links to its nodes, opened by the nodes), for as long as they live.
    """

    def __init__(self, host: IHost, protocol: TProtocol | None) -> None:
        self.host = host
        self.protocol = protocol
        self.opened = 0
        self._sessions: dict[ID, ClientSession] = {}
        self._adopted: set[ClientSession] = set()
        self._opening: dict[ID, trio.Lock] = {}
        self._nursery: trio.Nursery | None = None
        self._exit = None

    async def __aenter__(self) -> "SessionPool":
        self._exit = trio.open_nursery()
        self._nursery = await self._exit.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        assert self._exit is not None and self._nursery is not None
        self._nursery.cancel_scope.cancel()
        return await self._exit.__aexit__(*exc_info)

    async def _session(self, peer: ID) -> ClientSession:
        session = self._sessions.get(peer)
        if session is not None and self._usable(session):
            return session
        # Concurrent first requests to one peer share one new session.
        lock = self._opening.setdefault(peer, trio.Lock())
        async with lock:
            session = self._sessions.get(peer)
            if session is not None and self._usable(session):
                return session
            if self.protocol is None:
                raise SessionEnded("gone", "no link to the peer")
            if session is not None:
                await session.close()
            if self._nursery is None:
                raise RuntimeError("SessionPool used outside its 'async with' block")
            stream = await self.host.new_stream(peer, [self.protocol])
            session = ClientSession(stream)
            self._sessions[peer] = session
            self.opened += 1
            self._nursery.start_soon(session.run)
            return session

    def _usable(self, session: ClientSession) -> bool:
        if session.closed:
            return False
        if session in self._adopted:
            return True  # its owner keeps it alive (pings), and ends it with the link
        idle = trio.current_time() - session.last_used
        return session.in_flight > 0 or idle < CLIENT_IDLE_S

    async def request(self, peer: ID, request: Request) -> Response:
        """Return ``peer``'s answer to ``request``; the caller bounds the time it may take.

        A request that never left this end because its session had just ended is sent once
        more on a fresh session; any other failure propagates (``SessionEnded`` or the
        network's errors), since the peer may have started the work.
        """
        slot = _Slot()
        try:
            return await (await self._session(peer))._request(request, slot)
        except SessionEnded:
            if slot.written:
                raise
        return await (await self._session(peer))._request(request, _Slot())

    def adopt(self, peer: ID, session: ClientSession) -> None:
        """Use ``session``, which its owner runs, for ``peer`` until ``forget(peer)``."""
        self._sessions[peer] = session
        self._adopted.add(session)

    def forget(self, peer: ID, session: ClientSession | None = None) -> None:
        """Drop the session to ``peer`` (it has gone); requests waiting on it fail.

        Given ``session``, drop only that one: a link that ends after its peer linked again
        must not take the new link's session with it.
        """
        if session is not None:
            self._adopted.discard(session)
            if self._sessions.get(peer) is not session:
                session._finish(SessionEnded("gone", "peer left"))
                return
        session = self._sessions.pop(peer, None)
        self._opening.pop(peer, None)
        if session is not None:
            self._adopted.discard(session)
            session._finish(SessionEnded("gone", "peer left"))


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class ServeLimits:
    """How long a serving end waits, and how much it takes on, per session."""

    first_timeout_s: float = 10.0
    frame_timeout_s: float = 10.0
    idle_timeout_s: float = SERVER_IDLE_S
    max_in_flight: int = 256


class SessionRefused(Exception):
    """The peer broke the protocol; ``reason`` is a short tag for logs and metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


async def serve_session(
    stream: INetStream, handle: Handler, limits: ServeLimits, busy: Callable[[Request], Response]
) -> int:
    """Answer the requests that arrive on ``stream``, several at once, until it goes quiet.

    See ``SessionServer``; this is one with nothing but requests on its stream.
    """
    return await SessionServer(stream, handle, limits, busy).run()


class SessionServer:
    """The answering end of one session stream.

    Each request runs in its own task; beyond ``limits.max_in_flight`` the answer is
    ``busy(request)`` at once, so a session can never queue without bound. A node's link to
    its router also carries other messages: those of ``kinds`` go to ``on_message``, whose
    reply (if any) is written in turn, and ``send`` writes a message of this end's own.
    """

    def __init__(
        self,
        stream: INetStream,
        handle: Handler,
        limits: ServeLimits,
        busy: Callable[[Request], Response],
        reader: FrameReader | None = None,
        *,
        kinds: tuple[type, ...] = (),
        on_message: Callable[[Message], Message | None] | None = None,
    ) -> None:
        self.stream = stream
        self._handle = handle
        self._limits = limits
        self._busy = busy
        self._reader = reader or FrameReader(lean_net_stream(stream))
        self._kinds = (Request, *kinds)
        self._on_message = on_message
        self._work = _InFlight(limits.idle_timeout_s)
        self._outbox: _Outbox | None = None
        self._ready = trio.Event()
        # Whether the session ended because the peer sent nothing for the idle timeout.
        self.went_quiet = False

    async def send(self, message: Message) -> None:
        """Write ``message`` in turn with the answers, once the session runs."""
        await self._ready.wait()
        assert self._outbox is not None
        await self._outbox.send(encode(message))

    async def run(self) -> int:
        """Serve until the peer ends the stream or goes quiet; return the requests handled.

        Raises ``SessionRefused`` (work in flight cancelled) for a malformed frame or a peer
        too slow to send one: the agent logs the reason and then resets the stream, so the
        peer never sees the reset before the reason is on record.
        """
        work = self._work
        refused: SessionRefused | None = None
        async with trio.open_nursery() as nursery:

            def write_failed(exc: BaseException) -> None:
                logger.info("peer %s left before its answers: %s", remote_peer(self.stream), exc)
                nursery.cancel_scope.cancel()

            self._outbox = outbox = _Outbox(self.stream, write_failed, lambda: work.count > 1)
            self._ready.set()
            first = True
            while True:
                try:
                    message = await self._next(first)
                except trio.TooSlowError:
                    refused = SessionRefused("timeout", "no whole request in time")
                    break
                except FrameError as exc:
                    refused = SessionRefused(exc.reason, str(exc))
                    break
                if message is None:
                    break
                first = False
                if not isinstance(message, Request):
                    assert self._on_message is not None
                    reply = self._on_message(message)
                    if reply is not None:
                        await outbox.send(encode(reply))
                    continue
                if work.count >= self._limits.max_in_flight:
                    await outbox.send(encode(self._busy(message)))
                    continue
                work.start()
                nursery.start_soon(self._answer, message)
            if refused is None:
                # Each answer's task returns once its frame is written (by it or by the task
                # writing when it queued), so nothing is left queued after the last one.
                await work.drained()
            else:
                nursery.cancel_scope.cancel()
        if refused is not None:
            raise refused
        await close_quietly(self.stream)
        return work.total

    async def _answer(self, request: Request) -> None:
        assert self._outbox is not None
        try:
            try:
                frame = _encode_answer(request, await self._handle(request))
            except Exception:  # noqa: BLE001 - one request's bug must not end the others
                logger.exception("handling request %s failed", request.request_id.hex())
                frame = encode(_failure(request, "internal-error", "the handler failed"))
            await self._outbox.send(frame)
        finally:
            self._work.finish()

    async def _next(self, first: bool) -> Message | None:
        reader = self._reader
        if not first and not reader.has_frame():
            # Silence only counts as idle while nothing is in flight: a caller waiting on
            # long work has nothing to send. The idle clock starts when the last work ends.
            with self._work.idle_clock() as idle:
                try:
                    await reader.wait_for_data()
                except Truncated:
                    return None
            if idle.cancelled_caught:
                self.went_quiet = True
                return None
        if reader.has_frame():
            return await receive(reader, *self._kinds)  # all here: nothing to wait for
        limits = self._limits
        with trio.fail_after(limits.first_timeout_s if first else limits.frame_timeout_s):
            return await receive(reader, *self._kinds)


class _InFlight:
    """Counts a session's requests in flight; the session is idle only while none are."""

    def __init__(self, idle_timeout_s: float) -> None:
        self.count = 0
        self.total = 0
        self.idle_timeout_s = idle_timeout_s
        self.idle_scope: trio.CancelScope | None = None
        self._none = trio.Event()
        self._none.set()

    def start(self) -> None:
        if self.count == 0:
            self._none = trio.Event()
        self.count += 1
        self.total += 1

    def finish(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._none.set()
            if self.idle_scope is not None:
                self.idle_scope.deadline = trio.current_time() + self.idle_timeout_s

    async def drained(self) -> None:
        await self._none.wait()

    def idle_clock(self) -> "_IdleClock":
        """Return a scope that expires after the idle timeout counted from the last work."""
        return _IdleClock(self)


class _IdleClock:
    """``_InFlight.idle_clock``'s scope.

    A plain class: a generator-based context manager costs a few microseconds more, and this
    one is entered for every request.
    """

    def __init__(self, work: _InFlight) -> None:
        self._work = work
        deadline = trio.current_time() + work.idle_timeout_s if work.count == 0 else math.inf
        self._scope = trio.CancelScope(deadline=deadline)

    def __enter__(self) -> trio.CancelScope:
        self._work.idle_scope = self._scope
        return self._scope.__enter__()

    def __exit__(self, *exc_info: Any) -> bool:
        self._work.idle_scope = None
        return self._scope.__exit__(*exc_info)


def _failure(request: Request, code: str, message: str) -> Response:
    return Response(request.request_id, False, error=code, message=message)


def _encode_answer(request: Request, response: Response) -> bytes:
    """Return the answer's frame, or an error frame if the answer is too large to send."""
    try:
        return encode(response)
    except Oversized as exc:
        logger.warning("answer to %s is too large: %s", request.request_id.hex(), exc)
        return encode(_failure(request, "output-too-large", str(exc)))
