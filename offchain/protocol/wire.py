"""Typed messages of the router, node and mesh protocols, and their checked map forms."""

from dataclasses import dataclass, field
from typing import Any

from offchain.protocol.frames import FrameError, MsgType, encode_frame
from offchain.protocol.invocation.constants import ADDRESS_BYTES, SIGNATURE_BYTES
from offchain.protocol.invocation.encoding import MAX_ENCODED_BYTES

MAX_WORKLOADS = 64
MAX_NAME = 64
MAX_PATH = 8
MAX_ERROR = 512
MAX_PEERS_IN_SUMMARY = 256
# The largest encoded invocation order or receipt a frame carries (the codec's own bound).
MAX_INVOCATION = MAX_ENCODED_BYTES


def _get(value: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in value:
        raise FrameError(f"missing field {key!r}")
    item = value[key]
    if isinstance(item, bool) and kind is int:
        raise FrameError(f"field {key!r} must be int, got bool")
    if not isinstance(item, kind):
        raise FrameError(f"field {key!r} has type {type(item).__name__}")
    return item


def _uint(value: dict[str, Any], key: str, limit: int = 2**63 - 1) -> int:
    item = _get(value, key, int)
    if not 0 <= item <= limit:
        raise FrameError(f"field {key!r} out of range: {item}")
    return item


def _name(value: dict[str, Any], key: str) -> str:
    item = _get(value, key, str)
    if not 0 < len(item) <= MAX_NAME:
        raise FrameError(f"field {key!r} length {len(item)} not in 1..{MAX_NAME}")
    return item


def _names(value: dict[str, Any], key: str, limit: int) -> tuple[str, ...]:
    items = _get(value, key, list)
    if len(items) > limit:
        raise FrameError(f"field {key!r} holds {len(items)} items, limit {limit}")
    out = []
    for item in items:
        if not isinstance(item, str) or not 0 < len(item) <= MAX_NAME:
            raise FrameError(f"field {key!r} holds a bad name")
        out.append(item)
    return tuple(out)


def _bounded_bytes(value: dict[str, Any], key: str, limit: int) -> bytes:
    item = _get(value, key, bytes)
    if len(item) > limit:
        raise FrameError(f"field {key!r} of {len(item)} bytes, limit {limit}")
    return item


def _signature(value: dict[str, Any], key: str) -> bytes:
    """Return a 65-byte signature, or empty bytes where none is carried."""
    item = _get(value, key, bytes)
    if len(item) not in (0, SIGNATURE_BYTES):
        raise FrameError(f"field {key!r} of {len(item)} bytes, a signature is {SIGNATURE_BYTES}")
    return item


def _address(value: dict[str, Any], key: str) -> bytes:
    """Return a 20-byte address, or empty bytes where none is carried."""
    item = _get(value, key, bytes)
    if len(item) not in (0, ADDRESS_BYTES):
        raise FrameError(f"field {key!r} of {len(item)} bytes, an address is {ADDRESS_BYTES}")
    return item


def _check_keys(value: dict[str, Any], keys: frozenset[str]) -> None:
    extra = set(value) - keys
    if extra:
        raise FrameError(f"unknown fields {sorted(map(str, extra))}")


@dataclass(frozen=True)
class Hello:
    """A compute node's introduction, the first frame on its link to a router."""

    workloads: tuple[str, ...]
    e_power: int
    capacity: int
    queue_depth: int
    binding: bytes = b""

    TYPE = MsgType.HELLO
    KEYS = frozenset({"workloads", "e_power", "capacity", "queue_depth", "binding"})

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {
            "workloads": list(self.workloads),
            "e_power": self.e_power,
            "capacity": self.capacity,
            "queue_depth": self.queue_depth,
            "binding": self.binding,
        }

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "Hello":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        return cls(
            workloads=_names(value, "workloads", MAX_WORKLOADS),
            e_power=_uint(value, "e_power"),
            capacity=_uint(value, "capacity", 1_000_000),
            queue_depth=_uint(value, "queue_depth", 1_000_000),
            binding=_get(value, "binding", bytes),
        )


@dataclass(frozen=True)
class Load:
    """A compute node's report of its queue."""

    queue_depth: int

    TYPE = MsgType.LOAD
    KEYS = frozenset({"queue_depth"})

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {"queue_depth": self.queue_depth}

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "Load":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        return cls(queue_depth=_uint(value, "queue_depth", 1_000_000))


@dataclass(frozen=True)
class Ping:
    """A router's liveness and RTT probe."""

    nonce: int

    TYPE = MsgType.PING
    KEYS = frozenset({"nonce"})

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {"nonce": self.nonce}

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "Ping":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        return cls(nonce=_uint(value, "nonce"))


@dataclass(frozen=True)
class Pong:
    """A node's answer to a ping, with its queue depth."""

    nonce: int
    queue_depth: int

    TYPE = MsgType.PONG
    KEYS = frozenset({"nonce", "queue_depth"})

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {"nonce": self.nonce, "queue_depth": self.queue_depth}

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "Pong":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        return cls(nonce=_uint(value, "nonce"), queue_depth=_uint(value, "queue_depth", 1_000_000))


@dataclass(frozen=True)
class Request:
    """One invocation: the workload, its input, the user's signed order, and the routers visited.

    ``invocation`` is the canonical encoding of the user's ``InvocationRequest``
    (``offchain/protocol/invocation``) and ``signature`` the user's 65-byte EIP-712 signature of
    it. They travel as opaque bytes, bounded here and decoded by the router's admission, so a
    malformed order is one refused request with its reason, not a dropped session. A router
    that checks invocations refuses a request without them (``unsigned``). ``router`` is the
    20-byte address of the router that hands the request to its node, which the node names in
    its receipt (empty from callers and on the mesh: only the serving router sets it).
    """

    request_id: bytes
    workload: str
    payload: bytes
    path: tuple[str, ...] = ()
    timeout_ms: int = 30_000
    invocation: bytes = b""
    signature: bytes = b""
    router: bytes = b""
    # The frame it was read from, when that is exactly its encoding: a router passes it on
    # as read. Not an init field, so ``replace`` (a changed message) never carries it over.
    frame: bytes | None = field(default=None, init=False, compare=False, repr=False)

    TYPE = MsgType.REQUEST
    KEYS = frozenset(
        {
            "request_id",
            "workload",
            "payload",
            "path",
            "timeout_ms",
            "invocation",
            "signature",
            "router",
        }
    )
    MAX_PAYLOAD = 1_024 * 1_024

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {
            "request_id": self.request_id,
            "workload": self.workload,
            "payload": self.payload,
            "path": list(self.path),
            "timeout_ms": self.timeout_ms,
            "invocation": self.invocation,
            "signature": self.signature,
            "router": self.router,
        }

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "Request":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        request_id = _get(value, "request_id", bytes)
        if len(request_id) != 16:
            raise FrameError("request_id must be 16 bytes")
        payload = _get(value, "payload", bytes)
        if len(payload) > cls.MAX_PAYLOAD:
            raise FrameError("payload too large")
        return cls(
            request_id=request_id,
            workload=_name(value, "workload"),
            payload=payload,
            path=_names(value, "path", MAX_PATH),
            timeout_ms=_uint(value, "timeout_ms", 3_600_000),
            invocation=_bounded_bytes(value, "invocation", MAX_INVOCATION),
            signature=_signature(value, "signature"),
            router=_address(value, "router"),
        )


@dataclass(frozen=True)
class Response:
    """The answer to a request: the output and the node's signed receipt, or an error code.

    ``receipt`` is the canonical encoding of the node's ``Receipt`` for the output and
    ``node_signature`` its 65-byte signature, both empty on an error or when the request carried
    no signed order. ``error`` is a short code: for a refused order, the ``reason`` of the
    ``InvocationRejected`` that refused it (``bad-signature``, ``nonce-reused``, ...).
    """

    request_id: bytes
    ok: bool
    output: bytes = b""
    error: str = ""
    message: str = ""
    node: str = ""
    hops: int = 0
    receipt: bytes = b""
    node_signature: bytes = b""
    # As ``Request.frame``: a router passes a node's answer on to its caller as read.
    frame: bytes | None = field(default=None, init=False, compare=False, repr=False)

    TYPE = MsgType.RESPONSE
    KEYS = frozenset(
        {
            "request_id",
            "ok",
            "output",
            "error",
            "message",
            "node",
            "hops",
            "receipt",
            "node_signature",
        }
    )

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {
            "request_id": self.request_id,
            "ok": self.ok,
            "output": self.output,
            "error": self.error,
            "message": self.message[:MAX_ERROR],
            "node": self.node,
            "hops": self.hops,
            "receipt": self.receipt,
            "node_signature": self.node_signature,
        }

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "Response":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        return cls(
            request_id=_get(value, "request_id", bytes),
            ok=_get(value, "ok", bool),
            output=_get(value, "output", bytes),
            error=_get(value, "error", str)[:MAX_NAME],
            message=_get(value, "message", str)[:MAX_ERROR],
            node=_get(value, "node", str)[:128],
            hops=_uint(value, "hops", MAX_PATH + 1),
            receipt=_bounded_bytes(value, "receipt", MAX_INVOCATION),
            node_signature=_signature(value, "node_signature"),
        )


@dataclass(frozen=True)
class Summary:
    """A router's gossip about itself: its links and the best it offers per workload.

    Not a frame of its own: its canonical map is the body that its router signs, carried in a
    ``SignedSummary``.
    """

    router: str
    seq: int
    links: dict[str, int] = field(default_factory=dict)
    workloads: dict[str, int] = field(default_factory=dict)

    KEYS = frozenset({"router", "seq", "links", "workloads"})

    def to_map(self) -> dict[str, Any]:
        """Return the map form (link RTTs and expected times in microseconds)."""
        return {
            "router": self.router,
            "seq": self.seq,
            "links": dict(self.links),
            "workloads": dict(self.workloads),
        }

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "Summary":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        router = _get(value, "router", str)
        if not 0 < len(router) <= 128:
            raise FrameError(f"router name of length {len(router)}")
        return cls(
            router=router,
            seq=_uint(value, "seq"),
            links=_uint_map(value, "links"),
            workloads=_uint_map(value, "workloads"),
        )


@dataclass(frozen=True)
class SignedSummary:
    """A summary as its origin router signed it, relayed byte for byte.

    ``body`` is the canonical encoding of the ``Summary`` map, ``signature`` the origin's
    secp256k1 signature over it (see ``offchain/routers/signing.py``), and ``binding`` the
    origin's endorsed identity binding. Lengths are checked when the summary is verified, so
    a bad signature is one dropped summary, not a dropped mesh stream.
    """

    body: bytes
    signature: bytes
    binding: bytes

    TYPE = MsgType.SUMMARY
    KEYS = frozenset({"body", "signature", "binding"})

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {"body": self.body, "signature": self.signature, "binding": self.binding}

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "SignedSummary":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        return cls(
            body=_get(value, "body", bytes),
            signature=_get(value, "signature", bytes),
            binding=_get(value, "binding", bytes),
        )


def _uint_map(value: dict[str, Any], key: str) -> dict[str, int]:
    items = _get(value, key, dict)
    if len(items) > MAX_PEERS_IN_SUMMARY:
        raise FrameError(f"field {key!r} holds {len(items)} entries")
    out: dict[str, int] = {}
    for name, number in items.items():
        if not isinstance(name, str) or not 0 < len(name) <= 128:
            raise FrameError(f"field {key!r} has a bad key")
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 2**63:
            raise FrameError(f"field {key!r} has a bad value")
        out[name] = number
    return out


@dataclass(frozen=True)
class RecordBatch:
    """Invocation records a router gossips together on the records topic: one message for many.

    Each is the canonical encoding of an ``InvocationRecord`` (``offchain/protocol/invocation``)
    that the router countersigned; their signatures are checked by whoever settles them
    (validators), not here, where only the sizes are bounded.
    """

    records: tuple[bytes, ...]

    TYPE = MsgType.RECORDS
    KEYS = frozenset({"records"})
    # About 600 bytes each: a full batch stays inside the 60 KiB body of a RECORDS frame.
    MAX_RECORDS = 80

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {"records": list(self.records)}

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "RecordBatch":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        items = _get(value, "records", list)
        if not 1 <= len(items) <= cls.MAX_RECORDS:
            raise FrameError(f"a record batch holds 1 to {cls.MAX_RECORDS} records")
        if not all(type(item) is bytes and len(item) <= MAX_INVOCATION for item in items):
            raise FrameError(f"each record is at most {MAX_INVOCATION} bytes")
        return cls(tuple(items))


@dataclass(frozen=True)
class Join:
    """A peer's request to gossip, with the identity binding of its staked address.

    Sent on the join protocol's stream (``protocols.GOSSIP_JOIN``); the router answers with
    its own, once it has admitted the peer. The binding is presented on the peer's own
    connection, so a plain binding (``net/identity.py``) is enough.
    """

    binding: bytes

    TYPE = MsgType.JOIN
    KEYS = frozenset({"binding"})
    MAX_BINDING = 512

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {"binding": self.binding}

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "Join":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        binding = _get(value, "binding", bytes)
        if len(binding) > cls.MAX_BINDING:
            raise FrameError(f"binding of {len(binding)} bytes")
        return cls(binding)


MESSAGE_CLASSES: dict[MsgType, Any] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Load,
        Ping,
        Pong,
        Request,
        Response,
        SignedSummary,
        RecordBatch,
        Join,
    )
}


Message = Hello | Load | Ping | Pong | Request | Response | SignedSummary | RecordBatch | Join


# Messages that routers pass on unchanged, and so keep the frame they were read from.
RELAYED = (Request, Response)


def encode(message: Message) -> bytes:
    """Return the frame that carries ``message``."""
    frame = getattr(message, "frame", None)
    if frame is not None:
        return frame
    return encode_frame(message.TYPE, message.to_map())
