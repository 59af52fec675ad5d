"""py-libp2p's yamux with fewer scheduler round trips per frame (libp2p 0.8.1).

Counted with a trio instrument on a routed request (caller, router, node in one process),
py-libp2p spent 94 task steps per request, and 56 of them were uncontended ``trio.Lock``
acquisitions: trio's ``Lock.acquire`` always yields to the scheduler, even when the lock is
free, and one message takes five to seven such locks on its way through the TCP stream, the
muxer, the muxed stream and the net stream. Each yield is a pass of trio's run loop (an
``epoll_wait`` and a reschedule) on a path that otherwise does a few microseconds of work.

This module keeps py-libp2p's yamux and changes three things, each with the same wire
protocol and the same mutual exclusion:

* ``NoYieldLock``/``NoYieldSemaphore`` take a free lock without yielding and wait like a
  trio lock only when it is held. Every frame still yields at its socket operation, so no
  task can monopolise the loop.
* The connection's frame writer drops an extra ``checkpoint()`` after every frame and the
  debug line it formats on every write whether or not debug logging is on.
* Per-frame work that does not need to repeat is done once: py-libp2p reads its PY_YAMUX_*
  tuning from the environment on every frame, and bounds each frame body's read with
  ``fail_after``, whose generator-based context manager costs more than the read itself
  when the body is already buffered; a plain cancel scope gives the same bound.
* Receive-window credit goes back to the sender only once half the window is consumed, as
  go-yamux does. py-libp2p 0.8.1 also credits small reads at once, which on request/response
  traffic made about a third of all frames window updates.

Locks are swapped on objects as they are created, and only while free: a lock that someone
holds or waits on keeps its trio lock, which stays correct, merely slower.
"""

import functools
import socket

import trio
from libp2p.abc import IHost, IMuxedConn, INetStream, ISecureConn
from libp2p.custom_types import TProtocol
from libp2p.io.utils import read_exactly
from libp2p.peer.id import ID
from libp2p.stream_muxer.muxer_multistream import MuxerMultistream
from libp2p.stream_muxer.rw_lock import ReadWriteLock
from libp2p.stream_muxer.yamux import yamux as py_yamux
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux, YamuxStream

from offchain.net.no_yield import NoYieldLock, NoYieldSemaphore

# Attribute chain from a Noise session down to the TCP stream, as py-libp2p 0.8.1 builds it:
# SecureSession.conn -> NoiseTransportReadWriter.read_writer -> NoisePacketReadWriter
# .read_write_closer -> RawConnection.stream -> TrioTCPStream (read_lock, write_lock).
_TRANSPORT_CHAIN = ("conn", "read_writer", "read_write_closer", "stream")


def _swap_lock(owner: object, name: str) -> None:
    lock = getattr(owner, name, None)
    if type(lock) is trio.Lock and not lock.locked():
        setattr(owner, name, NoYieldLock())


def _swap_rw_lock(rw_lock: object) -> None:
    if not isinstance(rw_lock, ReadWriteLock):
        return
    _swap_lock(rw_lock, "_readers_lock")
    writer = getattr(rw_lock, "_writer_lock", None)
    if type(writer) is trio.Semaphore and writer.value == 1:
        rw_lock._writer_lock = NoYieldSemaphore(1, max_value=writer.max_value)


class BufferedReads:
    """A TCP stream whose reads are buffered and whose writes try the socket first.

    Reads take what the socket has (up to ``READ_SIZE``) and hand it out: Noise reads each
    message as a 2-byte length and then the body, two socket reads and two scheduler trips
    per frame; through this buffer, frames that arrived together cost one. Only the
    connection's frame reader reads, so the buffer needs no lock of its own.

    Writes go straight to the socket when it takes them whole. trio's ``send_all`` yields to
    the scheduler after every successful send (every trio I/O call is a checkpoint), which is
    one more pass of the run loop for each message; a write that would block, or fails, takes
    trio's path, which waits, or raises the stream's usual error. So that at most
    ``FAST_WRITES`` writes in a row skip the checkpoint, nothing can monopolise the loop.
    """

    READ_SIZE = 64 * 1_024
    FAST_WRITES = 16

    def __init__(self, stream: object) -> None:
        self._stream = stream
        self._buffer = b""
        self._socket = _stdlib_socket(stream)
        self._fast_writes = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)

    async def read(self, n: int | None = None) -> bytes:
        """Return up to ``n`` bytes; the socket is read only when the buffer is empty."""
        if not self._buffer:
            chunk = await self._stream.read(max(n or 0, self.READ_SIZE))  # type: ignore[attr-defined]
            if n is None or n < 0 or len(chunk) <= n:
                return chunk
            self._buffer = chunk
        if n is None or n < 0 or n >= len(self._buffer):
            data, self._buffer = self._buffer, b""
            return data
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    async def write(self, data: bytes) -> None:
        """Send ``data``: at once when the socket takes it all, else by the stream's path."""
        lock = getattr(self._stream, "write_lock", None)
        # Only when no other write is under way (it may be waiting for the socket with part
        # of its data sent) and the stream's lock takes no scheduler trip (so no other write
        # can start between a partial send here and the rest going out below).
        if (
            self._socket is not None
            and type(lock) is NoYieldLock
            and not lock.locked()
            and self._fast_writes < self.FAST_WRITES
        ):
            try:
                sent = self._socket.send(data)
            except OSError:  # would block, or broken: the stream's path waits or reports it
                sent = 0
            if sent == len(data):
                self._fast_writes += 1
                return
            data = data[sent:]
        self._fast_writes = 0
        await self._stream.write(data)  # type: ignore[attr-defined]


def _stdlib_socket(stream: object) -> socket.socket | None:
    """Return the socket under py-libp2p's TCP stream (trio keeps it as ``_sock``), if any."""
    trio_socket = getattr(getattr(stream, "stream", None), "socket", None)
    sock = getattr(trio_socket, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def lean_transport(secured_conn: ISecureConn) -> None:
    """Buffer reads from the TCP stream under ``secured_conn``, and swap its locks."""
    owner: object | None = None
    node: object = secured_conn
    for name in _TRANSPORT_CHAIN:
        owner, node = node, getattr(node, name, None)
        if node is None:
            return
    _swap_lock(node, "read_lock")
    _swap_lock(node, "write_lock")
    if not isinstance(node, BufferedReads):
        setattr(owner, _TRANSPORT_CHAIN[-1], BufferedReads(node))


def lean_net_stream(stream: INetStream) -> INetStream:
    """Swap the locks of a net stream (and its yamux stream) for ones that do not yield.

    Call it when a stream is first handed over (a handler's first line, or right after
    ``new_stream``): nobody else holds its locks then.
    """
    _swap_lock(stream, "_state_lock")
    muxed = getattr(stream, "muxed_stream", None)
    if isinstance(muxed, YamuxStream):
        _lean_stream(muxed)
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
    if type(stream) is YamuxStream:
        # Same state, one policy method changed: see LeanYamuxStream.
        stream.__class__ = LeanYamuxStream
    _swap_lock(stream, "window_lock")
    _swap_lock(stream, "close_lock")
    _swap_rw_lock(stream.rw_lock)


class LeanYamux(Yamux):
    """py-libp2p's yamux connection, with the changes described in this module."""

    def __init__(self, secured_conn: ISecureConn, peer_id: ID, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(secured_conn, peer_id, *args, **kwargs)
        _swap_lock(self, "_write_lock")
        _swap_lock(self, "streams_lock")
        lean_transport(secured_conn)

    async def _write_frame(self, data: bytes) -> None:
        async with self._write_lock:
            await self.secured_conn.write(data)

    async def _read_data_body(self, length: int) -> bytes:
        """Read a DATA frame's body, bounded like py-libp2p's (``TooSlowError`` at the end)."""
        session = self.secured_conn
        buffered = getattr(session, "high_watermark", 0) - getattr(session, "low_watermark", 0)
        if buffered >= length:
            return await read_exactly(session, length)  # decrypted already: cannot wait
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
        if isinstance(stream, YamuxStream):
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


def use_lean_yamux(host: IHost, negotiate_timeout_s: int) -> None:
    """Make ``host`` build ``LeanYamux`` connections (call before it dials or listens)."""
    network = host.get_network()
    network.upgrader.muxer_multistream = LeanMuxerMultistream(
        {TProtocol(YAMUX_PROTOCOL_ID): LeanYamux}, negotiate_timeout_s
    )
