"""IBFT wire messages: frozen records, a canonical, versioned, bounded encoding; secp256k1 signing.

Every consensus message is one signed payload (the part a validator vouches for) plus, for
PRE-PREPARE and ROUND-CHANGE, the unsigned material that justifies it (the value, and other
validators' signed payloads). The wire form is ``VERSION || kind || body``; integers are fixed
width big-endian, byte strings carry a 4-byte length and lists a 2-byte count, so one value has
exactly one encoding and anything else (short, long, trailing bytes, unknown kind or version)
raises ``MalformedMessage``. A payload is signed over
``keccak256(DOMAIN || VERSION || payload bytes)``, and the payload begins with its kind, so a
signature for one kind never counts for another.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from enum import IntEnum

from offchain.crypto.hashing import keccak
from offchain.crypto.keys import InvalidSignature, Keypair, recover_address

VERSION = 1
DOMAIN = b"\x19EMC-IBFT"
DIGEST_SIZE = 32
SIGNATURE_SIZE = 65
# Bounds (bytes or counts) on what one message may hold.
MAX_VALUE_BYTES = 1 << 20
MAX_SEAL_BYTES = 256
MAX_LIST = 1024
MAX_PAYLOAD_BYTES = 13 + DIGEST_SIZE + 2 + MAX_SEAL_BYTES
MAX_MESSAGE_BYTES = MAX_VALUE_BYTES + 2 * MAX_LIST * 256
# Recovered senders and decoded messages are pure functions of their bytes; caching them lets a
# broadcast be checked once per process instead of once per receiver (see docs/consensus.md).
RECOVER_CACHE = 1 << 16
DECODE_CACHE = 1 << 13


class MessageError(ValueError):
    """A consensus message that cannot be accepted."""


class MalformedMessage(MessageError):
    """Bytes that are not a canonical encoding of a known message."""


class BadSignature(MessageError):
    """A signature that does not recover to an address."""


class Kind(IntEnum):
    """Message kinds on the wire (the first byte of every payload)."""

    PRE_PREPARE = 1
    PREPARE = 2
    COMMIT = 3
    ROUND_CHANGE = 4
    DECIDED = 5


# --- signed payloads ------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """The signed part of a PRE-PREPARE: the proposer vouches for ``digest`` at (height, round)."""

    height: int
    round: int
    digest: bytes


@dataclass(frozen=True)
class Prepare:
    """A PREPARE vote for ``digest`` at (height, round)."""

    height: int
    round: int
    digest: bytes


@dataclass(frozen=True)
class Commit:
    """A COMMIT vote with the sender's seal (BLS signature) over the commit ``digest``."""

    height: int
    round: int
    digest: bytes
    seal: bytes


@dataclass(frozen=True)
class RoundChange:
    """A ROUND-CHANGE to ``round``, naming the sender's highest prepared round and digest."""

    height: int
    round: int
    prepared_round: int | None
    prepared_digest: bytes | None


Payload = Proposal | Prepare | Commit | RoundChange


@dataclass(frozen=True)
class Signed:
    """A payload with its canonical bytes, signature and recovered sender address."""

    payload: Payload
    raw: bytes
    signature: bytes
    sender: str


# --- wire messages --------------------------------------------------------------------------


@dataclass(frozen=True)
class PrePrepareMsg:
    """A proposal with its value and, for round > 0, its round-change justification."""

    proposal: Signed
    value: bytes
    round_changes: tuple[Signed, ...]
    prepares: tuple[Signed, ...]


@dataclass(frozen=True)
class PrepareMsg:
    """A PREPARE on the wire."""

    prepare: Signed


@dataclass(frozen=True)
class CommitMsg:
    """A COMMIT on the wire."""

    commit: Signed


@dataclass(frozen=True)
class RoundChangeMsg:
    """A ROUND-CHANGE with the prepared certificate it claims (value and quorum of PREPAREs)."""

    round_change: Signed
    prepared_value: bytes
    prepares: tuple[Signed, ...]


@dataclass(frozen=True)
class DecidedMsg:
    """A decision proof for a peer that fell behind: the value and a quorum of COMMITs."""

    value: bytes
    commits: tuple[Signed, ...]


Message = PrePrepareMsg | PrepareMsg | CommitMsg | RoundChangeMsg | DecidedMsg


# --- payload encoding -----------------------------------------------------------------------


def encode_payload(payload: Payload) -> bytes:
    """Return the canonical bytes of a payload."""
    if isinstance(payload, Proposal | Prepare):
        kind = Kind.PRE_PREPARE if isinstance(payload, Proposal) else Kind.PREPARE
        _check_digest(payload.digest)
        return struct.pack(">BQI", kind, payload.height, payload.round) + payload.digest
    if isinstance(payload, Commit):
        _check_digest(payload.digest)
        if len(payload.seal) > MAX_SEAL_BYTES:
            raise MalformedMessage("seal too long")
        head = struct.pack(">BQI", Kind.COMMIT, payload.height, payload.round)
        return head + payload.digest + struct.pack(">H", len(payload.seal)) + payload.seal
    if isinstance(payload, RoundChange):
        head = struct.pack(">BQI", Kind.ROUND_CHANGE, payload.height, payload.round)
        if payload.prepared_round is None:
            if payload.prepared_digest is not None:
                raise MalformedMessage("prepared digest without a prepared round")
            return head + b"\x00"
        _check_digest(payload.prepared_digest)
        return head + b"\x01" + struct.pack(">I", payload.prepared_round) + payload.prepared_digest
    raise TypeError(f"not a payload: {type(payload).__name__}")


def _check_digest(digest: bytes | None) -> None:
    """Raise unless ``digest`` is 32 bytes."""
    if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE:
        raise MalformedMessage("a digest is 32 bytes")


def _check_range(height: int, round_: int) -> None:
    """Raise unless height and round fit their fields."""
    if not (0 <= height < 1 << 64 and 0 <= round_ < 1 << 32):
        raise MalformedMessage("height or round out of range")


def decode_payload(raw: bytes) -> Payload:
    """Return the payload of canonical bytes, or raise ``MalformedMessage``."""
    if len(raw) < 13:
        raise MalformedMessage("payload too short")
    kind, height, round_ = struct.unpack_from(">BQI", raw)
    rest = raw[13:]
    if kind in (Kind.PRE_PREPARE, Kind.PREPARE):
        if len(rest) != DIGEST_SIZE:
            raise MalformedMessage("bad proposal or prepare length")
        cls = Proposal if kind == Kind.PRE_PREPARE else Prepare
        return cls(height, round_, rest)
    if kind == Kind.COMMIT:
        if len(rest) < DIGEST_SIZE + 2:
            raise MalformedMessage("commit too short")
        (size,) = struct.unpack_from(">H", rest, DIGEST_SIZE)
        seal = rest[DIGEST_SIZE + 2 :]
        if size != len(seal) or size > MAX_SEAL_BYTES:
            raise MalformedMessage("bad seal length")
        return Commit(height, round_, rest[:DIGEST_SIZE], seal)
    if kind == Kind.ROUND_CHANGE:
        if rest == b"\x00":
            return RoundChange(height, round_, None, None)
        if len(rest) != 5 + DIGEST_SIZE or rest[0] != 1:
            raise MalformedMessage("bad round-change body")
        (prepared_round,) = struct.unpack_from(">I", rest, 1)
        return RoundChange(height, round_, prepared_round, rest[5:])
    raise MalformedMessage(f"unknown payload kind {kind}")


def signing_hash(raw: bytes) -> bytes:
    """Return the 32-byte hash a validator signs for payload bytes ``raw``."""
    return keccak(DOMAIN + bytes([VERSION]) + raw)


@functools.lru_cache(maxsize=RECOVER_CACHE)
def _recover(raw: bytes, signature: bytes) -> str | None:
    """Return the signer of ``raw``, or None when the signature does not recover."""
    try:
        return recover_address(signing_hash(raw), signature)
    except InvalidSignature:
        return None


def sign(keypair: Keypair, payload: Payload) -> Signed:
    """Return ``payload`` signed with ``keypair``."""
    _check_range(payload.height, payload.round)
    raw = encode_payload(payload)
    return Signed(payload, raw, keypair.sign_hash(signing_hash(raw)), keypair.address)


def open_signed(raw: bytes, signature: bytes) -> Signed:
    """Return the signed payload of ``raw`` with its recovered sender, or raise."""
    payload = decode_payload(raw)
    if encode_payload(payload) != raw:
        raise MalformedMessage("payload is not canonical")
    if len(signature) != SIGNATURE_SIZE:
        raise MalformedMessage("a signature is 65 bytes")
    sender = _recover(raw, signature)
    if sender is None:
        raise BadSignature("signature does not recover")
    return Signed(payload, raw, signature, sender)


# --- wire encoding --------------------------------------------------------------------------


def _bytes(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _signed(item: Signed) -> bytes:
    return _bytes(item.raw) + item.signature


def _list(items: tuple[Signed, ...]) -> bytes:
    if len(items) > MAX_LIST:
        raise MalformedMessage("list too long")
    return struct.pack(">H", len(items)) + b"".join(_signed(i) for i in items)


def encode(message: Message) -> bytes:
    """Return the canonical wire bytes of ``message``."""
    if isinstance(message, PrePrepareMsg):
        body = (
            _signed(message.proposal)
            + _bytes(message.value)
            + _list(message.round_changes)
            + _list(message.prepares)
        )
        kind = Kind.PRE_PREPARE
    elif isinstance(message, PrepareMsg):
        body, kind = _signed(message.prepare), Kind.PREPARE
    elif isinstance(message, CommitMsg):
        body, kind = _signed(message.commit), Kind.COMMIT
    elif isinstance(message, RoundChangeMsg):
        body = (
            _signed(message.round_change) + _bytes(message.prepared_value) + _list(message.prepares)
        )
        kind = Kind.ROUND_CHANGE
    elif isinstance(message, DecidedMsg):
        body, kind = _bytes(message.value) + _list(message.commits), Kind.DECIDED
    else:
        raise TypeError(f"not a message: {type(message).__name__}")
    data = bytes([VERSION, kind]) + body
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage("message too large")
    return data


class _Reader:
    """A cursor over wire bytes that raises ``MalformedMessage`` on any overrun."""

    def __init__(self, data: bytes, offset: int) -> None:
        self.data = data
        self.offset = offset

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise MalformedMessage("message truncated")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def blob(self, limit: int) -> bytes:
        (size,) = struct.unpack(">I", self.take(4))
        if size > limit:
            raise MalformedMessage("field too long")
        return self.take(size)

    def signed(self, kind: Kind) -> Signed:
        raw = self.blob(MAX_PAYLOAD_BYTES)
        if not raw or raw[0] != kind:
            raise MalformedMessage(f"expected a {kind.name} payload")
        return open_signed(raw, self.take(SIGNATURE_SIZE))

    def signed_list(self, kind: Kind) -> tuple[Signed, ...]:
        (count,) = struct.unpack(">H", self.take(2))
        if count > MAX_LIST:
            raise MalformedMessage("list too long")
        return tuple(self.signed(kind) for _ in range(count))

    def end(self) -> None:
        if self.offset != len(self.data):
            raise MalformedMessage("trailing bytes")


def decode(data: bytes) -> Message:
    """Return the message of wire bytes, checking every signature, or raise ``MessageError``."""
    if not isinstance(data, bytes):
        raise MalformedMessage("wire data must be bytes")
    return _decode(data)


@functools.lru_cache(maxsize=DECODE_CACHE)
def _decode(data: bytes) -> Message:
    """Return the message of wire bytes (cached: a pure function of them)."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage("message too large")
    if len(data) < 2:
        raise MalformedMessage("message too short")
    if data[0] != VERSION:
        raise MalformedMessage(f"unknown version {data[0]}")
    kind = data[1]
    reader = _Reader(data, 2)
    message: Message
    if kind == Kind.PRE_PREPARE:
        proposal = reader.signed(Kind.PRE_PREPARE)
        value = reader.blob(MAX_VALUE_BYTES)
        message = PrePrepareMsg(
            proposal,
            value,
            reader.signed_list(Kind.ROUND_CHANGE),
            reader.signed_list(Kind.PREPARE),
        )
    elif kind == Kind.PREPARE:
        message = PrepareMsg(reader.signed(Kind.PREPARE))
    elif kind == Kind.COMMIT:
        message = CommitMsg(reader.signed(Kind.COMMIT))
    elif kind == Kind.ROUND_CHANGE:
        round_change = reader.signed(Kind.ROUND_CHANGE)
        value = reader.blob(MAX_VALUE_BYTES)
        message = RoundChangeMsg(round_change, value, reader.signed_list(Kind.PREPARE))
    elif kind == Kind.DECIDED:
        value = reader.blob(MAX_VALUE_BYTES)
        message = DecidedMsg(value, reader.signed_list(Kind.COMMIT))
    else:
        raise MalformedMessage(f"unknown message kind {kind}")
    reader.end()
    return message


# --- builders -------------------------------------------------------------------------------


def pre_prepare(
    keypair: Keypair,
    height: int,
    round_: int,
    value: bytes,
    digest: bytes,
    round_changes: tuple[Signed, ...] = (),
    prepares: tuple[Signed, ...] = (),
) -> bytes:
    """Return the wire bytes of a PRE-PREPARE signed by ``keypair``."""
    signed = sign(keypair, Proposal(height, round_, digest))
    return encode(PrePrepareMsg(signed, value, round_changes, prepares))


def prepare(keypair: Keypair, height: int, round_: int, digest: bytes) -> bytes:
    """Return the wire bytes of a PREPARE signed by ``keypair``."""
    return encode(PrepareMsg(sign(keypair, Prepare(height, round_, digest))))


def commit(keypair: Keypair, height: int, round_: int, digest: bytes, seal: bytes) -> bytes:
    """Return the wire bytes of a COMMIT signed by ``keypair``."""
    return encode(CommitMsg(sign(keypair, Commit(height, round_, digest, seal))))


def round_change(
    keypair: Keypair,
    height: int,
    round_: int,
    prepared_round: int | None = None,
    prepared_value: bytes = b"",
    prepared_digest: bytes | None = None,
    prepares: tuple[Signed, ...] = (),
) -> bytes:
    """Return the wire bytes of a ROUND-CHANGE signed by ``keypair``."""
    signed = sign(keypair, RoundChange(height, round_, prepared_round, prepared_digest))
    return encode(RoundChangeMsg(signed, prepared_value, prepares))
