"""IBFT wire messages: frozen records, their canonical CBOR encoding, and secp256k1 signing.

Every consensus message is one signed payload (the part a validator vouches for) plus, for
PRE-PREPARE and ROUND-CHANGE, the unsigned material that justifies it (the value, and other
validators' signed payloads). Both levels are canonical CBOR (``canonical_cbor``), in arrays
whose positions are fixed per kind:

- a payload is ``[kind, height, round, digest]`` (PRE-PREPARE, PREPARE),
  ``[kind, height, round, digest, seal]`` (COMMIT) or
  ``[kind, height, round, prepared_round, prepared_digest]`` (ROUND-CHANGE, both null when
  nothing is prepared);
- a signed payload is ``[payload bytes, signature]``: the payload travels as the byte string
  that was signed, so a receiver checks the signature over exactly the bytes it read;
- a message is ``[VERSION, kind, ...]``: PRE-PREPARE ``[.., proposal, value, round_changes,
  prepares]``, PREPARE and COMMIT ``[.., vote]``, ROUND-CHANGE ``[.., round_change,
  prepared_value, prepares]``, DECIDED ``[.., value, commits]``.

The decoder accepts only canonical CBOR, so one value has exactly one encoding, and anything
else (short, long, trailing bytes, unknown kind or version, a field of the wrong type or size)
raises ``MalformedMessage``. A payload is signed over ``keccak256(DOMAIN || VERSION || payload
bytes)``, and the payload begins with its kind, so a signature for one kind never counts for
another.

Decoding checks the type and size of every field and decodes the sender's payload before it
recovers any signature; it then recovers the sender (for a DECIDED, the first COMMIT's signer)
and, with a membership check, refuses a stranger there, before decoding the payloads the
message lists and recovering each of their signers in order. A stranger's message thus costs
one CBOR pass, one payload and one recovery, and a validator's at most one recovery per
validator (lists hold at most ``MAX_VALIDATORS`` distinct signers). Every failure is a
``MessageError`` with its reason.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from offchain.crypto.hashing import keccak
from offchain.crypto.keys import InvalidSignature, Keypair, recover_address
from offchain.protocol.canonical_cbor import CborError, dumps, loads
from offchain.protocol.errors import InputRejected

VERSION = 2
DOMAIN = b"\x19EMC-IBFT"
DIGEST_SIZE = 32
SIGNATURE_SIZE = 65
MAX_HEIGHT = (1 << 64) - 1
MAX_ROUND = (1 << 32) - 1
# Bounds (bytes or counts) on what one message may hold.
MAX_VALUE_BYTES = 1 << 20
MAX_SEAL_BYTES = 256
# The largest validator set an epoch can hold (contracts/modules/validator_set.vy MAX_MEMBERS):
# a justification or proof lists each validator at most once, so no list is longer.
MAX_VALIDATORS = 128
# Encoded sizes, at most: a COMMIT payload with the longest seal (array head, kind, a 9-byte
# height, a 5-byte round, the digest and the seal with their heads); a signed payload (array
# head, the payload with a 3-byte head, the signature with a 2-byte one); a message (array head,
# version, kind, the main signed payload, a value with a 5-byte head, two full lists).
MAX_PAYLOAD_BYTES = 1 + 1 + 9 + 5 + (2 + DIGEST_SIZE) + (3 + MAX_SEAL_BYTES)
MAX_SIGNED_BYTES = 1 + (3 + MAX_PAYLOAD_BYTES) + (2 + SIGNATURE_SIZE)
MAX_MESSAGE_BYTES = (
    3 + MAX_SIGNED_BYTES + (5 + MAX_VALUE_BYTES) + 2 * (3 + MAX_VALIDATORS * MAX_SIGNED_BYTES)
)
# CBOR items below the top array, at most: six fields, the main signed payload's two, and two
# lists of MAX_VALIDATORS signed payloads (each an array of two); nesting, at most: the top
# array, a list, a signed payload. ``loads`` refuses anything beyond them before building it.
MAX_ITEMS = 6 + 2 + 2 * MAX_VALIDATORS * 3
MAX_DEPTH = 3
# Recovered senders and decoded messages are pure functions of their bytes; caching them lets a
# broadcast be checked once per process instead of once per receiver (see docs/consensus.md).
# Both caches are bounded in bytes, not only in entries. A recovery entry holds at most
# MAX_PAYLOAD_BYTES + SIGNATURE_SIZE bytes of key and a 42-character address, under
# RECOVER_ENTRY_BYTES with Python's object overhead: 16,384 entries stay under 16 MiB.
RECOVER_CACHE = 1 << 14
RECOVER_ENTRY_BYTES = 1 << 10
# Decoded payloads by their bytes: a view change's ROUND-CHANGEs carry the same PREPAREs, and
# each is read once. An entry (the bytes, the payload record and its fields) is under
# PAYLOAD_ENTRY_BYTES: 4,096 entries stay under 4 MiB.
PAYLOAD_CACHE = 1 << 12
PAYLOAD_ENTRY_BYTES = 1 << 10
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
    """Message kinds on the wire: the first field of every payload, the second of every message."""

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
_KINDS: dict[type, Kind] = {
    Proposal: Kind.PRE_PREPARE,
    Prepare: Kind.PREPARE,
    Commit: Kind.COMMIT,
    RoundChange: Kind.ROUND_CHANGE,
}


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


def _check_uint(value: Any, limit: int, what: str) -> None:
    """Raise unless ``value`` is an integer (not a bool) in [0, limit]."""
    if type(value) is not int or not 0 <= value <= limit:
        raise MalformedMessage(f"{what} out of range")


def _check_digest(digest: Any) -> None:
    """Raise unless ``digest`` is 32 bytes."""
    if type(digest) is not bytes or len(digest) != DIGEST_SIZE:
        raise MalformedMessage("a digest is 32 bytes")


def _check_seal(seal: Any) -> None:
    """Raise unless ``seal`` is bytes within the bound."""
    if type(seal) is not bytes or len(seal) > MAX_SEAL_BYTES:
        raise MalformedMessage(f"a seal is at most {MAX_SEAL_BYTES} bytes")


def _check_range(height: Any, round_: Any) -> None:
    """Raise unless height and round fit their fields."""
    if type(height) is not int or type(round_) is not int:
        raise MalformedMessage("height or round out of range")
    if not (0 <= height <= MAX_HEIGHT and 0 <= round_ <= MAX_ROUND):
        raise MalformedMessage("height or round out of range")


def _payload_fields(payload: Payload) -> list[Any]:
    """Return the array a payload is encoded as, checking every field."""
    _check_range(payload.height, payload.round)
    if isinstance(payload, Proposal | Prepare):
        _check_digest(payload.digest)
        return [int(_KINDS[type(payload)]), payload.height, payload.round, payload.digest]
    if isinstance(payload, Commit):
        _check_digest(payload.digest)
        _check_seal(payload.seal)
        return [int(Kind.COMMIT), payload.height, payload.round, payload.digest, payload.seal]
    if isinstance(payload, RoundChange):
        if payload.prepared_round is None:
            if payload.prepared_digest is not None:
                raise MalformedMessage("prepared digest without a prepared round")
        else:
            _check_uint(payload.prepared_round, MAX_ROUND, "prepared round")
            _check_digest(payload.prepared_digest)
        return [
            int(Kind.ROUND_CHANGE),
            payload.height,
            payload.round,
            payload.prepared_round,
            payload.prepared_digest,
        ]
    raise TypeError(f"not a payload: {type(payload).__name__}")


def encode_payload(payload: Payload) -> bytes:
    """Return the canonical bytes of a payload."""
    return dumps(_payload_fields(payload))


# Fields of each payload kind: the array's length.
_PAYLOAD_FIELDS = {
    Kind.PRE_PREPARE: 4,
    Kind.PREPARE: 4,
    Kind.COMMIT: 5,
    Kind.ROUND_CHANGE: 5,
}


def decode_payload(raw: bytes) -> Payload:
    """Return the payload of canonical bytes, or raise ``MalformedMessage``."""
    if type(raw) is not bytes:
        raise MalformedMessage("payload must be bytes")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise MalformedMessage("payload too long")
    try:
        fields = loads(raw, max_depth=1, max_items=5)
    except CborError as exc:
        raise MalformedMessage(f"payload is not canonical CBOR: {exc}") from None
    if type(fields) is not list or not fields:
        raise MalformedMessage("a payload is an array that starts with its kind")
    kind = fields[0]
    size = _PAYLOAD_FIELDS.get(kind) if type(kind) is int else None
    if size is None:
        raise MalformedMessage(f"unknown payload kind {kind!r:.20}")
    if len(fields) != size:
        raise MalformedMessage(f"a {Kind(kind).name} payload has {size} fields, not {len(fields)}")
    height, round_ = fields[1], fields[2]
    _check_range(height, round_)
    if kind == Kind.ROUND_CHANGE:
        prepared_round, prepared_digest = fields[3], fields[4]
        if prepared_round is None and prepared_digest is None:
            return RoundChange(height, round_, None, None)
        _check_uint(prepared_round, MAX_ROUND, "prepared round")
        _check_digest(prepared_digest)
        return RoundChange(height, round_, prepared_round, prepared_digest)
    digest = fields[3]
    _check_digest(digest)
    if kind == Kind.COMMIT:
        _check_seal(fields[4])
        return Commit(height, round_, digest, fields[4])
    return (Proposal if kind == Kind.PRE_PREPARE else Prepare)(height, round_, digest)


@functools.lru_cache(maxsize=PAYLOAD_CACHE)
def _decode_payload_cached(raw: bytes) -> Payload:
    """Return ``decode_payload(raw)``, remembered (refusals are not)."""
    return decode_payload(raw)


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
    raw = encode_payload(payload)
    return Signed(payload, raw, keypair.sign_hash(signing_hash(raw)), keypair.address)


@dataclass(frozen=True)
class _Unopened:
    """A payload read and checked for form, with its signature not yet recovered."""

    payload: Payload
    raw: bytes
    signature: bytes


def _read_signed(raw: bytes, signature: bytes) -> _Unopened:
    """Return the canonical payload of ``raw`` with its signature, unrecovered, or raise.

    ``decode_payload`` accepts only canonical bytes with fields of exact types, so the payload
    re-encodes to ``raw``: the bytes signed are the bytes of the value, with no re-encoding.
    """
    if type(raw) is not bytes:
        raise MalformedMessage("a payload is bytes")
    payload = _decode_payload_cached(raw)
    if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
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


def _signed(item: Signed) -> list[bytes]:
    return [item.raw, item.signature]


def _list(items: tuple[Signed, ...]) -> list[list[bytes]]:
    if len(items) > MAX_VALIDATORS:
        raise MalformedMessage("list too long")
    return [_signed(i) for i in items]


def encode(message: Message) -> bytes:
    """Return the canonical wire bytes of ``message``."""
    if isinstance(message, PrePrepareMsg):
        fields = [
            int(Kind.PRE_PREPARE),
            _signed(message.proposal),
            _read_value(message.value),
            _list(message.round_changes),
            _list(message.prepares),
        ]
    elif isinstance(message, PrepareMsg):
        fields = [int(Kind.PREPARE), _signed(message.prepare)]
    elif isinstance(message, CommitMsg):
        fields = [int(Kind.COMMIT), _signed(message.commit)]
    elif isinstance(message, RoundChangeMsg):
        fields = [
            int(Kind.ROUND_CHANGE),
            _signed(message.round_change),
            _read_value(message.prepared_value),
            _list(message.prepares),
        ]
    elif isinstance(message, DecidedMsg):
        fields = [int(Kind.DECIDED), _read_value(message.value), _list(message.commits)]
    else:
        raise TypeError(f"not a message: {type(message).__name__}")
    data = dumps([VERSION, *fields])
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage("message too large")
    return data


# Fields of each message kind, version and kind included: the top array's length.
_MESSAGE_FIELDS = {
    Kind.PRE_PREPARE: 6,
    Kind.PREPARE: 3,
    Kind.COMMIT: 3,
    Kind.ROUND_CHANGE: 5,
    Kind.DECIDED: 4,
}


def peek_kind(data: bytes) -> int | None:
    """Return the kind that wire bytes declare, without checking them; None if they declare none.

    For bytes already decoded (or written by ``encode``), where reading the kind again would
    cost a decode: a message's array head, its version and its kind are one byte each.
    """
    if len(data) >= 3 and 0x83 <= data[0] <= 0x86 and data[1] == VERSION:
        return data[2]
    return None


Pair = tuple[bytes, bytes]


def _read_pair(value: Any) -> Pair:
    """Return the payload bytes and signature of a signed payload, checked for size only."""
    if type(value) is not list or len(value) != 2:
        raise MalformedMessage("a signed payload is [payload, signature]")
    raw, signature = value
    if type(raw) is not bytes or len(raw) > MAX_PAYLOAD_BYTES:
        raise MalformedMessage(f"a payload is at most {MAX_PAYLOAD_BYTES} bytes")
    if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
        raise MalformedMessage("a signature is 65 bytes")
    return raw, signature


def _read_item(pair: Pair, kind: Kind) -> _Unopened:
    """Return the decoded payload of ``pair``, unrecovered, or raise unless it is a ``kind``."""
    item = _read_signed(*pair)
    if _KINDS[type(item.payload)] != kind:
        raise MalformedMessage(f"expected a {kind.name} payload")
    return item


def _read_list(value: Any, kind: Kind) -> tuple[Kind, tuple[Pair, ...]]:
    """Return the kind and the signed payloads, their payloads not decoded, of a list; or raise."""
    if type(value) is not list:
        raise MalformedMessage("a list of signed payloads is an array")
    if len(value) > MAX_VALIDATORS:
        raise MalformedMessage(f"list of {len(value)} signers, more than {MAX_VALIDATORS}")
    return kind, tuple(_read_pair(item) for item in value)


def _read_value(value: Any) -> bytes:
    """Return a proposed or prepared value, or raise."""
    if type(value) is not bytes or len(value) > MAX_VALUE_BYTES:
        raise MalformedMessage(f"a value is at most {MAX_VALUE_BYTES} bytes")
    return value


@dataclass(frozen=True)
class _Structure:
    """A message read for form: its main payload (none for DECIDED), value and lists.

    Every field is checked for type and size; the main payload is decoded, the payloads in the
    lists are not yet (``_open_message`` decodes them once the sender is known to be a member).
    """

    kind: Kind
    main: _Unopened | None
    value: bytes
    lists: tuple[tuple[Kind, tuple[Pair, ...]], ...]


def _load(data: bytes) -> list[Any]:
    """Return the top array of wire bytes, within the bounds, or raise."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage("message too large")
    try:
        fields = loads(data, max_depth=MAX_DEPTH, max_items=MAX_ITEMS)
    except CborError as exc:
        if exc.reason == "cbor-too-many-items":
            # only the two lists may hold more than a handful of items
            raise MalformedMessage(
                f"more items than a message holds: a list of more than {MAX_VALIDATORS} signers"
            ) from None
        raise MalformedMessage(f"not a canonical message: {exc}") from None
    if type(fields) is not list or len(fields) < 2:
        raise MalformedMessage("a message is an array [version, kind, ...]")
    return fields


def _read(data: bytes) -> _Structure:
    """Return the structure of wire bytes without recovering any signature, or raise."""
    fields = _load(data)
    version, kind = fields[0], fields[1]
    if type(version) is not int or version != VERSION:
        raise MalformedMessage(f"unknown version {version!r:.20}")
    size = _MESSAGE_FIELDS.get(kind) if type(kind) is int else None
    if size is None:
        raise MalformedMessage(f"unknown message kind {kind!r:.20}")
    kind = Kind(kind)
    if len(fields) != size:
        raise MalformedMessage(f"a {kind.name} message has {size} fields, not {len(fields)}")
    if kind == Kind.PRE_PREPARE:
        main = _read_item(_read_pair(fields[2]), Kind.PRE_PREPARE)
        value = _read_value(fields[3])
        lists = (_read_list(fields[4], Kind.ROUND_CHANGE), _read_list(fields[5], Kind.PREPARE))
        return _Structure(kind, main, value, lists)
    if kind in (Kind.PREPARE, Kind.COMMIT):
        return _Structure(kind, _read_item(_read_pair(fields[2]), kind), b"", ())
    if kind == Kind.ROUND_CHANGE:
        main = _read_item(_read_pair(fields[2]), Kind.ROUND_CHANGE)
        value = _read_value(fields[3])
        return _Structure(kind, main, value, (_read_list(fields[4], Kind.PREPARE),))
    value = _read_value(fields[2])
    return _Structure(kind, None, value, (_read_list(fields[3], Kind.COMMIT),))


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
    """Return the message of ``structure``, checking its sender before anything else.

    The main sender (for a DECIDED, the first COMMIT's signer) is recovered and checked first;
    only then are the listed payloads decoded, all of them, and their signers recovered in order.
    """
    main = None if structure.main is None else _open(structure.main)
    if main is not None:
        _check_member(main.sender, is_member)
    elif structure.lists and structure.lists[0][1]:
        kind, pairs = structure.lists[0]
        _check_member(_open(_read_item(pairs[0], kind)).sender, is_member)
    items = tuple(tuple(_read_item(p, kind) for p in pairs) for kind, pairs in structure.lists)
    lists = tuple(_open_list(unopened, is_member) for unopened in items)
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
    _decode_payload_cached.cache_clear()
    _decode_cache.clear()


def decode(data: bytes, is_member: Membership | None = None) -> Message:
    """Return the message of wire bytes, checking every signature, or raise ``MessageError``.

    With ``is_member``, every signer must pass it: the main sender is recovered and checked
    first and inner signers one by one, stopping at the first that fails.
    """
    if type(data) is not bytes:
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
