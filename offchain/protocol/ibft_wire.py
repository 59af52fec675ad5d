"""IBFT wire messages: frozen records, a canonical, versioned, bounded encoding; secp256k1 signing.

Every consensus message is one signed payload (the part a validator vouches for) plus, for
PRE-PREPARE and ROUND-CHANGE, the unsigned material that justifies it (the value, and other
validators' signed payloads). The wire form is ``VERSION || kind || body``; integers are fixed
width big-endian, byte strings carry a 4-byte length and lists a 2-byte count, so one value has
exactly one encoding and anything else (short, long, trailing bytes, unknown kind or version)
raises ``MalformedMessage``. A payload is signed over
``keccak256(DOMAIN || VERSION || payload bytes)``, and the payload begins with its kind, so a
signature for one kind never counts for another.

Decoding reads the whole structure before it recovers any signature, then recovers the main
sender first and each inner signer in order, so that with a membership check a stranger's
message costs one recovery and a validator's at most one per validator (lists hold at most
``MAX_VALIDATORS`` distinct signers). Every failure is a ``MessageError`` with its reason.
"""

from __future__ import annotations

import functools
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from offchain.crypto.hashing import keccak
from offchain.crypto.keys import InvalidSignature, Keypair, recover_address
from offchain.protocol.errors import InputRejected

VERSION = 1
DOMAIN = b"\x19EMC-IBFT"
DIGEST_SIZE = 32
SIGNATURE_SIZE = 65
# Bounds (bytes or counts) on what one message may hold.
MAX_VALUE_BYTES = 1 << 20
MAX_SEAL_BYTES = 256
# The largest validator set an epoch can hold (contracts/modules/validator_set.vy MAX_MEMBERS):
# a justification or proof lists each validator at most once, so no list is longer.
MAX_VALIDATORS = 128
MAX_PAYLOAD_BYTES = 13 + DIGEST_SIZE + 2 + MAX_SEAL_BYTES
MAX_SIGNED_BYTES = 4 + MAX_PAYLOAD_BYTES + SIGNATURE_SIZE
MAX_MESSAGE_BYTES = (
    2 + MAX_SIGNED_BYTES + 4 + MAX_VALUE_BYTES + 2 * (2 + MAX_VALIDATORS * MAX_SIGNED_BYTES)
)
# Recovered senders and decoded messages are pure functions of their bytes; caching them lets a
# broadcast be checked once per process instead of once per receiver (see docs/consensus.md).
# Both caches are bounded in bytes, not only in entries. A recovery entry holds at most
# MAX_PAYLOAD_BYTES + SIGNATURE_SIZE bytes of key and a 42-character address, under
# RECOVER_ENTRY_BYTES with Python's object overhead: 16,384 entries stay under 16 MiB.
RECOVER_CACHE = 1 << 14
RECOVER_ENTRY_BYTES = 1 << 10
# The decode cache keeps only messages up to DECODE_CACHE_MAX_MESSAGE wire bytes and charges each
# entry decoded_charge(data) bytes (an upper bound on the key and the decoded objects it keeps);
# it evicts the least recently used entries to stay within DECODE_CACHE_BYTES in total.
DECODE_CACHE_BYTES = 8 << 20
DECODE_CACHE_MAX_MESSAGE = 64 << 10
# Python objects behind one decoded signed payload (Signed, its payload record, raw, signature,
# sender) and behind one message record; measured at under half of these (tests check it).
SIGNED_OBJECT_BYTES = 2048
MESSAGE_OBJECT_BYTES = 1024


class MessageError(InputRejected):
    """A consensus message that cannot be accepted."""

    reason = "ibft-refused"


class MalformedMessage(MessageError):
    """Bytes that are not a canonical encoding of a known message."""

    reason = "ibft-malformed"


class BadSignature(MessageError):
    """A signature that does not recover to an address."""

    reason = "ibft-bad-signature"


class NotMember(MessageError):
    """A message signed by an address the caller does not count as a validator."""

    reason = "ibft-not-member"


class DuplicateSigner(MessageError):
    """A justification or proof that lists one signer twice."""

    reason = "ibft-duplicate-signer"


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
    if not isinstance(raw, bytes):
        raise MalformedMessage("payload must be bytes")
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


@dataclass(frozen=True)
class _Unopened:
    """A payload read and checked for form, with its signature not yet recovered."""

    payload: Payload
    raw: bytes
    signature: bytes


def _read_signed(raw: bytes, signature: bytes) -> _Unopened:
    """Return the canonical payload of ``raw`` with its signature, unrecovered, or raise."""
    payload = decode_payload(raw)
    if encode_payload(payload) != raw:
        raise MalformedMessage("payload is not canonical")
    if len(signature) != SIGNATURE_SIZE:
        raise MalformedMessage("a signature is 65 bytes")
    return _Unopened(payload, raw, signature)


def _open(item: _Unopened) -> Signed:
    """Return ``item`` with its recovered sender, or raise ``BadSignature``."""
    sender = _recover(item.raw, item.signature)
    if sender is None:
        raise BadSignature("signature does not recover")
    return Signed(item.payload, item.raw, item.signature, sender)


def open_signed(raw: bytes, signature: bytes) -> Signed:
    """Return the signed payload of ``raw`` with its recovered sender, or raise."""
    return _open(_read_signed(raw, signature))


# --- wire encoding --------------------------------------------------------------------------


def _bytes(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _signed(item: Signed) -> bytes:
    return _bytes(item.raw) + item.signature


def _list(items: tuple[Signed, ...]) -> bytes:
    if len(items) > MAX_VALIDATORS:
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

    def signed(self, kind: Kind) -> _Unopened:
        raw = self.blob(MAX_PAYLOAD_BYTES)
        if not raw or raw[0] != kind:
            raise MalformedMessage(f"expected a {kind.name} payload")
        return _read_signed(raw, self.take(SIGNATURE_SIZE))

    def signed_list(self, kind: Kind) -> tuple[_Unopened, ...]:
        (count,) = struct.unpack(">H", self.take(2))
        if count > MAX_VALIDATORS:
            raise MalformedMessage(f"list of {count} signers, more than {MAX_VALIDATORS}")
        return tuple(self.signed(kind) for _ in range(count))

    def end(self) -> None:
        if self.offset != len(self.data):
            raise MalformedMessage("trailing bytes")


@dataclass(frozen=True)
class _Structure:
    """A message read for form only: its main payload (none for DECIDED), value and lists."""

    kind: Kind
    main: _Unopened | None
    value: bytes
    lists: tuple[tuple[_Unopened, ...], ...]


def _read(data: bytes) -> _Structure:
    """Return the structure of wire bytes without recovering any signature, or raise."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage("message too large")
    if len(data) < 2:
        raise MalformedMessage("message too short")
    if data[0] != VERSION:
        raise MalformedMessage(f"unknown version {data[0]}")
    kind = data[1]
    reader = _Reader(data, 2)
    if kind == Kind.PRE_PREPARE:
        main = reader.signed(Kind.PRE_PREPARE)
        value = reader.blob(MAX_VALUE_BYTES)
        lists = (reader.signed_list(Kind.ROUND_CHANGE), reader.signed_list(Kind.PREPARE))
        structure = _Structure(Kind.PRE_PREPARE, main, value, lists)
    elif kind in (Kind.PREPARE, Kind.COMMIT):
        structure = _Structure(Kind(kind), reader.signed(Kind(kind)), b"", ())
    elif kind == Kind.ROUND_CHANGE:
        main = reader.signed(Kind.ROUND_CHANGE)
        value = reader.blob(MAX_VALUE_BYTES)
        structure = _Structure(Kind.ROUND_CHANGE, main, value, (reader.signed_list(Kind.PREPARE),))
    elif kind == Kind.DECIDED:
        value = reader.blob(MAX_VALUE_BYTES)
        structure = _Structure(Kind.DECIDED, None, value, (reader.signed_list(Kind.COMMIT),))
    else:
        raise MalformedMessage(f"unknown message kind {kind}")
    reader.end()
    return structure


Membership = Callable[[str], bool]


def _check_member(sender: str, is_member: Membership | None) -> None:
    """Raise ``NotMember`` when a membership check is given and ``sender`` fails it."""
    if is_member is not None and not is_member(sender):
        raise NotMember(f"signer {sender} is not a validator")


def _open_list(items: tuple[_Unopened, ...], is_member: Membership | None) -> tuple[Signed, ...]:
    """Return ``items`` with their signers, stopping at the first repeated or non-member one."""
    seen: set[str] = set()
    opened = []
    for item in items:
        signed = _open(item)
        _check_member(signed.sender, is_member)
        if signed.sender in seen:
            raise DuplicateSigner(f"signer {signed.sender} listed twice")
        seen.add(signed.sender)
        opened.append(signed)
    return tuple(opened)


def _open_message(structure: _Structure, is_member: Membership | None) -> Message:
    """Return the message of ``structure``, recovering its main sender before any inner one."""
    main = None if structure.main is None else _open(structure.main)
    if main is not None:
        _check_member(main.sender, is_member)
    lists = tuple(_open_list(items, is_member) for items in structure.lists)
    if structure.kind == Kind.PRE_PREPARE:
        return PrePrepareMsg(main, structure.value, lists[0], lists[1])
    if structure.kind == Kind.PREPARE:
        return PrepareMsg(main)
    if structure.kind == Kind.COMMIT:
        return CommitMsg(main)
    if structure.kind == Kind.ROUND_CHANGE:
        return RoundChangeMsg(main, structure.value, lists[0])
    return DecidedMsg(structure.value, lists[0])


def signers(message: Message) -> tuple[str, ...]:
    """Return every signer of ``message``: the main sender first, then each inner one in order."""
    if isinstance(message, PrePrepareMsg):
        inner = message.round_changes + message.prepares
        return (message.proposal.sender,) + tuple(s.sender for s in inner)
    if isinstance(message, PrepareMsg):
        return (message.prepare.sender,)
    if isinstance(message, CommitMsg):
        return (message.commit.sender,)
    if isinstance(message, RoundChangeMsg):
        return (message.round_change.sender,) + tuple(s.sender for s in message.prepares)
    return tuple(c.sender for c in message.commits)


def decoded_charge(data: bytes, message: Message) -> int:
    """Return the bytes the decode cache counts for keeping ``message`` under key ``data``."""
    # the key and the value, raw payloads and signatures copied out of it, plus the objects
    return 2 * len(data) + MESSAGE_OBJECT_BYTES + SIGNED_OBJECT_BYTES * len(signers(message))


class _DecodeCache:
    """Decoded messages by their wire bytes, least recently used out first, in a byte budget."""

    def __init__(self, budget: int, max_message: int) -> None:
        self.budget = budget
        self.max_message = max_message
        self.entries: OrderedDict[bytes, tuple[Message, int]] = OrderedDict()
        self.bytes = 0

    def get(self, data: bytes) -> Message | None:
        entry = self.entries.get(data)
        if entry is None:
            return None
        self.entries.move_to_end(data)
        return entry[0]

    def put(self, data: bytes, message: Message) -> None:
        if len(data) > self.max_message or data in self.entries:
            return
        charge = decoded_charge(data, message)
        self.entries[data] = (message, charge)
        self.bytes += charge
        while self.bytes > self.budget:
            _, (_, old) = self.entries.popitem(last=False)
            self.bytes -= old

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0


_decode_cache = _DecodeCache(DECODE_CACHE_BYTES, DECODE_CACHE_MAX_MESSAGE)


def decode_cache_usage() -> tuple[int, int]:
    """Return (entries, charged bytes) of the decode cache."""
    return len(_decode_cache.entries), _decode_cache.bytes


def clear_caches() -> None:
    """Forget every cached recovery and decoded message."""
    _recover.cache_clear()
    _decode_cache.clear()


def decode(data: bytes, is_member: Membership | None = None) -> Message:
    """Return the message of wire bytes, checking every signature, or raise ``MessageError``.

    With ``is_member``, every signer must pass it: the main sender is recovered and checked
    first and inner signers one by one, stopping at the first that fails.
    """
    if not isinstance(data, bytes):
        raise MalformedMessage("wire data must be bytes")
    cached = _decode_cache.get(data)
    if cached is not None:
        for sender in signers(cached):
            _check_member(sender, is_member)
        return cached
    message = _open_message(_read(data), is_member)
    _decode_cache.put(data, message)
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
