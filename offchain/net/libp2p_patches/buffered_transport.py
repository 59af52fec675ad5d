"""Buffered reads and direct writes on the TCP stream under a Noise session (py-libp2p 0.8.1).

Noise reads each message as a 2-byte length and then its body, two socket reads and two
scheduler trips per frame; through a read buffer, frames that arrived together cost one. And
trio's ``send_all`` yields to the scheduler after every successful send (every trio I/O call
is a checkpoint), one more pass of the run loop per message; a write the socket takes whole
can skip it. py-libp2p gives no hook between Noise and the TCP stream, so ``install`` walks
from the session to the stream by 0.8.1's attribute names (``_CHAIN``), checking each link's
type, and puts a ``BufferedReads`` in the last link. ``LeanYamux`` calls it for every
connection it builds. The upstream change: docs/upstream/buffered_transport.md.
"""

import socket

import trio
from libp2p.io.trio import TrioTCPStream
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.security.noise.io import NoisePacketReadWriter, NoiseTransportReadWriter
from libp2p.security.secure_session import SecureSession

from offchain.net.libp2p_patches.guard import (
    PatchError,
    require_method,
    require_pinned_version,
    require_type,
)
from offchain.net.no_yield import NoYieldLock

NAME = "buffered_transport"

# From a Noise session down to the TCP stream, as py-libp2p 0.8.1 builds it: each attribute,
# and the type of what it holds.
_CHAIN: tuple[tuple[str, type], ...] = (
    ("conn", NoiseTransportReadWriter),
    ("read_writer", NoisePacketReadWriter),
    ("read_write_closer", RawConnection),
    ("stream", TrioTCPStream),
)


def check_library() -> None:
    """Raise ``PatchError`` unless py-libp2p's TCP stream reads and writes as this expects."""
    require_pinned_version()
    require_method(TrioTCPStream, "__init__", ("self", "stream"))
    require_method(TrioTCPStream, "read", ("self", "n"))
    require_method(TrioTCPStream, "write", ("self", "data"))
    require_method(SecureSession, "read", ("self", "n"))


class BufferedReads:
    """A TCP stream whose reads are buffered and whose writes try the socket first.

    Reads take what the socket has (up to ``READ_SIZE``) and hand it out. Only the
    connection's frame reader reads, so the buffer needs no lock of its own.

    Writes go straight to the socket when it takes them whole; a write that would block, or
    fails, takes trio's path, which waits, or raises the stream's usual error. So that at most
    ``FAST_WRITES`` writes in a row skip the checkpoint, nothing can monopolise the loop.
    """

    READ_SIZE = 64 * 1_024
    FAST_WRITES = 16

    def __init__(self, stream: TrioTCPStream, sock: socket.socket | None = None) -> None:
        self._stream = stream
        self._buffer = b""
        self._socket = sock
        self._fast_writes = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)

    async def read(self, n: int | None = None) -> bytes:
        """Return up to ``n`` bytes; the socket is read only when the buffer is empty."""
        if not self._buffer:
            chunk = await self._stream.read(max(n or 0, self.READ_SIZE))
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
        lock = self._stream.write_lock
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
        await self._stream.write(data)


def _stdlib_socket(stream: TrioTCPStream) -> socket.socket:
    """Return the socket under trio's socket stream (trio keeps it as ``_sock``)."""
    require_type(stream.stream, trio.SocketStream, "TrioTCPStream.stream")
    sock = getattr(stream.stream.socket, "_sock", None)
    if not isinstance(sock, socket.socket):
        raise PatchError(f"{NAME}: trio's socket keeps no stdlib socket as _sock ({sock!r})")
    return sock


def _tcp_link(secured_conn: object) -> tuple[object, object]:
    """Return the object holding the TCP stream under ``secured_conn``, and the stream."""
    require_type(secured_conn, SecureSession, "the secured connection")
    owner, node = secured_conn, secured_conn
    for name, expected in _CHAIN:
        owner, node = node, vars(node).get(name)
        if not (type(node) is expected or (name == _CHAIN[-1][0] and type(node) is BufferedReads)):
            require_type(node, expected, f"{type(owner).__qualname__}.{name}")
    return owner, node


def install(secured_conn: object) -> None:
    """Buffer reads from the TCP stream under ``secured_conn``, and swap its locks."""
    owner, stream = _tcp_link(secured_conn)
    if type(stream) is BufferedReads:
        return
    for name in ("read_lock", "write_lock"):
        lock = vars(stream)[name]
        require_type(lock, trio.Lock, f"TrioTCPStream.{name}")
        if not lock.locked():  # nobody holds it at connection set-up; a held one stays
            setattr(stream, name, NoYieldLock())
    setattr(owner, _CHAIN[-1][0], BufferedReads(stream, _stdlib_socket(stream)))


def verify_connection(secured_conn: object) -> None:
    """Raise ``PatchError`` unless a live connection's TCP stream is buffered, with lean locks."""
    _owner, stream = _tcp_link(secured_conn)
    require_type(stream, BufferedReads, "the TCP stream under the Noise session")
    for name in ("read_lock", "write_lock"):
        require_type(getattr(stream, name), NoYieldLock, f"TrioTCPStream.{name}")
    if stream._socket is None:
        raise PatchError(f"{NAME}: the buffered stream has no socket to write to directly")
