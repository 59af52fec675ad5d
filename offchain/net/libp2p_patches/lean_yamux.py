"""py-libp2p's yamux with fewer scheduler round trips per frame (py-libp2p 0.8.1).

Counted with a trio instrument on a routed request (caller, router, node in one process),
py-libp2p spent 94 task steps per request, and 56 of them were uncontended ``trio.Lock``
acquisitions: trio's ``Lock.acquire`` always yields to the scheduler, even when the lock is
free, and one message takes five to seven such locks on its way through the TCP stream, the
muxer, the muxed stream and the net stream. Each yield is a pass of trio's run loop (an
``epoll_wait`` and a reschedule) on a path that otherwise does a few microseconds of work.

This keeps py-libp2p's yamux (same wire protocol, same mutual exclusion) and changes:

* ``NoYieldLock``/``NoYieldSemaphore`` (``offchain/net/no_yield.py``) replace the connection's
  and each stream's locks: they take a free lock without yielding and wait like a trio lock
  only when it is held. Every frame still yields at its socket operation, so no task can
  monopolise the loop.
* The connection's frame writer drops an extra ``checkpoint()`` after every frame and the
  debug line it formats on every write whether or not debug logging is on.
* Per-frame work that does not need to repeat is done once: py-libp2p reads its PY_YAMUX_*
  tuning from the environment on every frame, and bounds each frame body's read with
  ``fail_after``, whose generator-based context manager costs more than the read itself
  when the body is already buffered; a plain cancel scope gives the same bound.
* Receive-window credit goes back to the sender only once half the window is consumed, as
  go-yamux does. py-libp2p 0.8.1 also credits small reads at once, which on request/response
  traffic made about a third of all frames window updates.

py-libp2p's muxer negotiation builds its own ``Yamux`` whatever class it is given, so
``install`` gives the host a ``MuxerMultistream`` that builds ``LeanYamux``. Locks are swapped
on objects as they are created; a stream lock found held keeps its trio lock (correct, merely
slower), and a lock of any other type than py-libp2p 0.8.1's is a ``PatchError``.
The upstream change: docs/upstream/lean_yamux.md.
"""

import functools

import trio
from libp2p.abc import IHost, IMuxedConn, INetStream, ISecureConn
from libp2p.custom_types import TProtocol
from libp2p.io.utils import read_exactly
from libp2p.peer.id import ID
from libp2p.security.secure_session import SecureSession
from libp2p.stream_muxer.muxer_multistream import MuxerMultistream
from libp2p.stream_muxer.rw_lock import ReadWriteLock
from libp2p.stream_muxer.yamux import yamux as py_yamux
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux, YamuxStream

from offchain.net.libp2p_patches import buffered_transport
from offchain.net.libp2p_patches.guard import (
    PatchError,
    require_method,
    require_pinned_version,
    require_type,
)
from offchain.net.no_yield import NoYieldLock, NoYieldSemaphore

NAME = "lean_yamux"

# Locks swapped on each object, by the attribute names py-libp2p 0.8.1 gives them.
CONNECTION_LOCKS = ("_write_lock", "streams_lock")
STREAM_LOCKS = ("window_lock", "close_lock")
NET_STREAM_LOCKS = ("_state_lock",)


def check_library() -> None:
    """Raise ``PatchError`` unless py-libp2p has every method this patch overrides or calls."""
    require_pinned_version()
    require_method(
        Yamux, "__init__", ("self", "secured_conn", "peer_id", "is_initiator", "on_close")
    )
    require_method(Yamux, "_write_frame", ("self", "data"))
    require_method(Yamux, "_read_data_body", ("self", "length"))
    require_method(Yamux, "open_stream", ("self",))
    require_method(Yamux, "accept_stream", ("self",))
    require_method(YamuxStream, "_grow_threshold", ("self",))
    require_method(YamuxStream, "_auto_tune_and_send_window_update", ("self", "bytes_read"))
    require_method(MuxerMultistream, "new_conn", ("self", "conn", "peer_id"))
    require_method(
        MuxerMultistream, "_annotate_connection", ("muxed_conn", "secured_conn", "protocol")
    )
    for tuning in (
        "_yamux_disable_hysteresis",
        "_yamux_batch_threshold_divisor",
        "_yamux_data_read_timeout",
    ):
        require_method(py_yamux, tuning, ())


def _swap_lock(owner: object, name: str) -> None:
    """Replace ``owner.name``, a free ``trio.Lock``, by a ``NoYieldLock`` (a held one stays)."""
    lock = vars(owner).get(name)
    require_type(lock, (trio.Lock, NoYieldLock), f"{type(owner).__qualname__}.{name}")
    if type(lock) is trio.Lock and not lock.locked():
        setattr(owner, name, NoYieldLock())


def _swap_rw_lock(rw_lock: ReadWriteLock) -> None:
    require_type(rw_lock, ReadWriteLock, "YamuxStream.rw_lock")
    _swap_lock(rw_lock, "_readers_lock")
    writer = vars(rw_lock).get("_writer_lock")
    require_type(writer, (trio.Semaphore, NoYieldSemaphore), "ReadWriteLock._writer_lock")
    if type(writer) is trio.Semaphore and writer.value == 1:
        rw_lock._writer_lock = NoYieldSemaphore(1, max_value=writer.max_value)  # type: ignore[assignment]


def lean_net_stream(stream: INetStream) -> INetStream:
    """Swap the net stream's lock over a lean yamux stream for one that does not yield.

    Call it when a stream is first handed over (a handler's first line, or right after
    ``new_stream``): nobody else holds its lock then. Streams of a connection that is not a
    ``LeanYamux`` (the patch switched off) are left as they are.
    """
    if type(stream.muxed_stream) is LeanYamuxStream:
        for name in NET_STREAM_LOCKS:
            _swap_lock(stream, name)
    return stream


# py-libp2p's environment tuning, read once per process instead of once per frame.
_hysteresis_disabled = functools.cache(py_yamux._yamux_disable_hysteresis)
_threshold_divisor = functools.cache(py_yamux._yamux_batch_threshold_divisor)
_data_read_timeout_s = functools.cache(py_yamux._yamux_data_read_timeout)


class LeanYamuxStream(YamuxStream):
    """A yamux stream that returns receive-window credit in go-yamux's batches."""

    def _grow_threshold(self) -> int:
        if _hysteresis_disabled():
            return 0
        return self.target_recv_window // _threshold_divisor()

    async def _auto_tune_and_send_window_update(self, *, bytes_read: int = 0) -> None:
        buffered = len(self.conn.stream_buffers.get(self.stream_id, b""))
        unreleased = self.target_recv_window - (self.recv_window + buffered)
        threshold = self._grow_threshold()
        if unreleased < threshold and self._pending_recv_release + bytes_read < threshold:
            # Less than half the window consumed: keep the credit for one larger update
            # (py-libp2p's own policy would send one now, for every small read).
            self._pending_recv_release += bytes_read
            return
        await super()._auto_tune_and_send_window_update(bytes_read=bytes_read)


def _lean_stream(stream: YamuxStream) -> None:
    """Give a new yamux stream the lean credit policy and locks that do not yield when free."""
    require_type(stream, (YamuxStream, LeanYamuxStream), "a new yamux stream")
    # py-libp2p builds ``YamuxStream`` by name in two places (open, and an inbound SYN), so
    # the class of the new object is changed: same state, one policy method differs.
    stream.__class__ = LeanYamuxStream
    for name in STREAM_LOCKS:
        _swap_lock(stream, name)
    _swap_rw_lock(stream.rw_lock)


class LeanYamux(Yamux):
    """py-libp2p's yamux connection, with the changes described in this module."""

    def __init__(self, secured_conn: ISecureConn, peer_id: ID, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        # ``_read_data_body`` reads how much a Noise session holds decrypted (0.8.1's names).
        require_type(secured_conn, SecureSession, "the connection under yamux")
        super().__init__(secured_conn, peer_id, *args, **kwargs)
        for name in CONNECTION_LOCKS:
            _swap_lock(self, name)
        if buffered_transport.NAME not in _disabled:
            buffered_transport.install(secured_conn)

    async def _write_frame(self, data: bytes) -> None:
        async with self._write_lock:
            await self.secured_conn.write(data)

    async def _read_data_body(self, length: int) -> bytes:
        """Read a DATA frame's body, bounded like py-libp2p's (``TooSlowError`` at the end)."""
        session = self.secured_conn
        if session.high_watermark - session.low_watermark >= length:  # type: ignore[attr-defined]
            # The whole body is buffered and decrypted, so this read never blocks.
            return await read_exactly(session, length)
        with trio.CancelScope(deadline=trio.current_time() + _data_read_timeout_s()):
            return await read_exactly(self.secured_conn, length)
        raise trio.TooSlowError

    async def open_stream(self) -> YamuxStream:
        """Open an outbound stream with the lean locks and credit policy."""
        stream = await super().open_stream()
        _lean_stream(stream)
        return stream

    async def accept_stream(self):  # type: ignore[no-untyped-def]
        """Accept an inbound stream with the lean locks and credit policy."""
        stream = await super().accept_stream()
        _lean_stream(stream)
        return stream


class LeanMuxerMultistream(MuxerMultistream):
    """Muxer negotiation that builds the muxer class it was given.

    py-libp2p 0.8.1's ``MuxerMultistream.new_conn`` builds its own ``Yamux`` for
    ``/yamux/1.0.0`` whatever class ``muxer_opt`` names; this one builds the class named.
    """

    async def new_conn(self, conn: ISecureConn, peer_id: ID) -> IMuxedConn:
        """Negotiate the muxer with the peer and build the class registered for it."""
        protocol, muxer_class = await self._selector.select(
            conn, conn.is_initiator, self.negotiate_timeout
        )
        if isinstance(muxer_class, type) and issubclass(muxer_class, Yamux):
            muxed = muxer_class(conn, peer_id, is_initiator=conn.is_initiator)
        else:
            muxed = muxer_class(conn, peer_id)
        return self._annotate_connection(muxed, conn, protocol)


# Set by ``install``: the patches switched off in this process (read once, like the rest).
_disabled: frozenset[str] = frozenset()


def install(host: IHost, negotiate_timeout_s: int, disabled: frozenset[str]) -> None:
    """Make ``host`` build ``LeanYamux`` connections (call before it dials or listens)."""
    global _disabled  # noqa: PLW0603 - one process-wide setting, fixed before any connection
    check_library()
    _disabled = disabled
    if buffered_transport.NAME not in disabled:
        buffered_transport.check_library()
    upgrader = host.get_network().upgrader  # type: ignore[attr-defined]
    require_type(upgrader.muxer_multistream, MuxerMultistream, "the host's muxer_multistream")
    upgrader.muxer_multistream = LeanMuxerMultistream(
        {TProtocol(YAMUX_PROTOCOL_ID): LeanYamux}, negotiate_timeout_s
    )


def verify(host: IHost) -> None:
    """Raise ``PatchError`` unless ``host`` negotiates yamux into ``LeanYamux`` connections."""
    muxers = host.get_network().upgrader.muxer_multistream  # type: ignore[attr-defined]
    require_type(muxers, LeanMuxerMultistream, "the host's muxer_multistream")
    if dict(muxers.transports) != {TProtocol(YAMUX_PROTOCOL_ID): LeanYamux}:
        raise PatchError(f"lean_yamux: the host's muxers are {dict(muxers.transports)}")


def verify_connection(muxed: IMuxedConn) -> None:
    """Raise ``PatchError`` unless a live connection and its streams took every lean change."""
    require_type(muxed, LeanYamux, "the connection's muxer")
    for name in CONNECTION_LOCKS:
        require_type(vars(muxed)[name], NoYieldLock, f"LeanYamux.{name}")
    for stream in list(muxed.streams.values()):  # type: ignore[attr-defined]
        require_type(stream, LeanYamuxStream, "a yamux stream of the connection")
        for name in STREAM_LOCKS:
            require_type(vars(stream)[name], NoYieldLock, f"LeanYamuxStream.{name}")
        require_type(vars(stream.rw_lock)["_readers_lock"], NoYieldLock, "rw_lock._readers_lock")
        require_type(vars(stream.rw_lock)["_writer_lock"], NoYieldSemaphore, "rw_lock._writer_lock")
