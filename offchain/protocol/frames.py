"""The frame format: length-prefixed, versioned, canonical, with a hard size limit per message type.

A frame is ``version (u8) | type (u8) | length (u32, big-endian) | body``, where the body is
the canonical CBOR encoding (RFC 8949 section 4.2) of a map. Decoding accepts only the
canonical encoding (``canonical_cbor.loads``), so one value has exactly one encoding, and the
work spent on a body is linear in its size.
"""

import enum
import logging
import struct
from typing import Any

from offchain.protocol import canonical_cbor
from offchain.protocol.errors import InputRejected

logger = logging.getLogger(__name__)

FRAME_VERSION = 1
HEADER = struct.Struct(">BBI")
HEADER_SIZE = HEADER.size


class MsgType(enum.IntEnum):
    """The message types carried in frames."""

    HELLO = 1
    LOAD = 2
    PING = 3
    PONG = 4
    REQUEST = 5
    RESPONSE = 6
    SUMMARY = 7
    RECORD = 8
    RECORDS = 9
    JOIN = 10


KIB = 1_024
MIB = 1_024 * KIB

# Hard limits on the body of each message type, in bytes.
MAX_BODY: dict[MsgType, int] = {
    MsgType.HELLO: 16 * KIB,
    MsgType.LOAD: 256,
    MsgType.PING: 128,
    MsgType.PONG: 128,
    MsgType.REQUEST: 1 * MIB + 16 * KIB,
    MsgType.RESPONSE: 4 * MIB + 16 * KIB,
    MsgType.SUMMARY: 256 * KIB,
    MsgType.RECORD: 4 * KIB,
    MsgType.RECORDS: 60 * KIB,
    MsgType.JOIN: 1 * KIB,
}


class FrameError(InputRejected):
    """A frame that must be dropped; ``reason`` is a short tag for logs and metrics."""

    reason = "malformed"


class UnknownVersion(FrameError):
    """A frame with a protocol version this agent does not speak."""

    reason = "unknown-version"


class UnknownType(FrameError):
    """A frame whose type is unknown or not expected on this stream."""

    reason = "unexpected-type"


class Oversized(FrameError):
    """A frame whose declared length exceeds its type's limit."""

    reason = "oversized"


class NonCanonical(FrameError):
    """A body that decodes but is not the canonical encoding of its value."""

    reason = "non-canonical"


class Truncated(FrameError):
    """A stream that ended in the middle of a frame, or before one."""

    reason = "truncated"


def encode_body(value: dict[str, Any]) -> bytes:
    """Return the canonical CBOR encoding of a map."""
    return canonical_cbor.dumps(value)


def decode_body(body: bytes) -> dict[str, Any]:
    """Return the map encoded canonically in ``body``, or raise ``FrameError``.

    The ``reason`` says what was wrong: ``non-canonical`` for a valid but non-canonical
    encoding, the decoder's own tag (``cbor-tag``, ``cbor-indefinite``, ...) otherwise.
    """
    try:
        value = canonical_cbor.loads(body)
    except canonical_cbor.CborError as exc:
        if exc.reason == "cbor-non-canonical":
            raise NonCanonical(f"body is not canonically encoded: {exc}") from None
        raise FrameError(f"body is not a message: {exc}", reason=exc.reason) from None
    if not isinstance(value, dict):
        raise FrameError(f"body is a {type(value).__name__}, not a map", reason="not-a-map")
    return value


def encode_frame(msg_type: MsgType, value: dict[str, Any]) -> bytes:
    """Return the frame for ``value`` as a message of ``msg_type``."""
    body = encode_body(value)
    if len(body) > MAX_BODY[msg_type]:
        raise Oversized(f"{msg_type.name} body of {len(body)} bytes exceeds {MAX_BODY[msg_type]}")
    return HEADER.pack(FRAME_VERSION, int(msg_type), len(body)) + body


def parse_header(header: bytes, expected: frozenset[MsgType]) -> tuple[MsgType, int]:
    """Return the type and body length of a 6-byte header, or raise ``FrameError``."""
    version, raw_type, length = HEADER.unpack(header)
    if version != FRAME_VERSION:
        raise UnknownVersion(f"frame version {version}, expected {FRAME_VERSION}")
    try:
        msg_type = MsgType(raw_type)
    except ValueError as exc:
        raise UnknownType(f"unknown message type {raw_type}") from exc
    if msg_type not in expected:
        raise UnknownType(f"{msg_type.name} not expected here")
    if length > MAX_BODY[msg_type]:
        raise Oversized(f"{msg_type.name} declares {length} bytes, limit {MAX_BODY[msg_type]}")
    return msg_type, length


def decode_frame(frame: bytes, expected: frozenset[MsgType]) -> tuple[MsgType, dict[str, Any]]:
    """Return the type and map of one complete frame held in memory."""
    if len(frame) < HEADER_SIZE:
        raise Truncated("frame shorter than its header")
    msg_type, length = parse_header(frame[:HEADER_SIZE], expected)
    if len(frame) != HEADER_SIZE + length:
        raise Truncated(f"frame holds {len(frame) - HEADER_SIZE} body bytes, header says {length}")
    return msg_type, decode_body(frame[HEADER_SIZE:])
