"""Reading whole frames (``offchain.protocol.frames``) and messages from a stream.

The frame format itself is pure and lives in ``offchain.protocol.frames``; this module holds the
part that waits on a stream.
"""

from typing import Any, Protocol

from offchain.protocol.frames import HEADER_SIZE, MsgType, Truncated, decode_body, parse_header
from offchain.protocol.wire import MESSAGE_CLASSES, RELAYED, Message


class ReadableStream(Protocol):
    """What framing needs from a stream."""

    async def read(self, n: int | None = None) -> bytes:
        """Return up to ``n`` bytes, or raise at end of stream."""
        ...


class FrameReader:
    """Reads whole frames from a stream, in chunks of up to ``CHUNK`` bytes.

    Fewer, larger reads matter: each read in py-libp2p's yamux may send a window update.
    """

    CHUNK = 64 * 1_024

    def __init__(self, stream: ReadableStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def _read_exact(self, n: int) -> bytes:
        await self._fill(n)
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    async def _fill(self, n: int) -> None:
        while len(self._buffer) < n:
            try:
                chunk = await self._stream.read(max(n - len(self._buffer), self.CHUNK))
            except Exception as exc:  # noqa: BLE001 - any stream end or reset ends the frame
                raise Truncated(f"stream ended: {type(exc).__name__}") from exc
            if not chunk:
                raise Truncated("stream ended")
            self._buffer.extend(chunk)

    def has_frame(self) -> bool:
        """Return whether the next frame has arrived whole, so reading it cannot wait."""
        if len(self._buffer) < HEADER_SIZE:
            return False
        length = int.from_bytes(self._buffer[2:HEADER_SIZE], "big")
        return len(self._buffer) >= HEADER_SIZE + length

    async def wait_for_data(self) -> None:
        """Return once at least one byte of the next frame has arrived (Truncated at the end)."""
        await self._fill(1)

    async def read(self, expected: frozenset[MsgType]) -> tuple[MsgType, dict[str, Any]]:
        """Return the next frame's type and map, or raise ``FrameError``."""
        msg_type, value, _frame = await self.read_frame(expected)
        return msg_type, value

    async def read_frame(
        self, expected: frozenset[MsgType]
    ) -> tuple[MsgType, dict[str, Any], bytes]:
        """Return the next frame's type and map, and the whole frame as read."""
        await self._fill(HEADER_SIZE)
        msg_type, length = parse_header(bytes(self._buffer[:HEADER_SIZE]), expected)
        frame = await self._read_exact(HEADER_SIZE + length)
        return msg_type, decode_body(frame[HEADER_SIZE:]), frame


_EXPECTED: dict[tuple[type, ...], frozenset[MsgType]] = {}


async def receive(reader: FrameReader, *classes: type) -> Message:
    """Return the next message, which must be of one of ``classes``, or raise ``FrameError``."""
    expected = _EXPECTED.get(classes)
    if expected is None:
        expected = _EXPECTED[classes] = frozenset(cls.TYPE for cls in classes)
    msg_type, value, frame = await reader.read_frame(expected)
    message = MESSAGE_CLASSES[msg_type].from_map(value)
    # The body is canonical (checked on reading), so the frame is this message's encoding
    # exactly when its map round-trips: not when ``from_map`` trimmed an over-long text.
    if isinstance(message, RELAYED) and message.to_map() == value:
        object.__setattr__(message, "frame", frame)
    return message
