"""Typed messages of the router, node and mesh protocols, and their checked map forms."""

from dataclasses import dataclass, field
from typing import Any

from offchain.protocol.frames import FrameError, MsgType, encode_frame

MAX_WORKLOADS = 64
MAX_NAME = 64
MAX_PATH = 8
MAX_ERROR = 512
MAX_PEERS_IN_SUMMARY = 256


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
    """One invocation: the workload, its input, and the routers it has already visited."""

    request_id: bytes
    workload: str
    payload: bytes
    path: tuple[str, ...] = ()
    timeout_ms: int = 30_000
    # The frame it was read from, when that is exactly its encoding: a router passes it on
    # as read. Not an init field, so ``replace`` (a changed message) never carries it over.
    frame: bytes | None = field(default=None, init=False, compare=False, repr=False)

    TYPE = MsgType.REQUEST
    KEYS = frozenset({"request_id", "workload", "payload", "path", "timeout_ms"})
    MAX_PAYLOAD = 1_024 * 1_024

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {
            "request_id": self.request_id,
            "workload": self.workload,
            "payload": self.payload,
            "path": list(self.path),
            "timeout_ms": self.timeout_ms,
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
        )


@dataclass(frozen=True)
class Response:
    """The answer to a request: the output, or an error code and message."""

    request_id: bytes
    ok: bool
    output: bytes = b""
    error: str = ""
    message: str = ""
    node: str = ""
    hops: int = 0
    # As ``Request.frame``: a router passes a node's answer on to its caller as read.
    frame: bytes | None = field(default=None, init=False, compare=False, repr=False)

    TYPE = MsgType.RESPONSE
    KEYS = frozenset({"request_id", "ok", "output", "error", "message", "node", "hops"})

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
class RouteRecord:
    """What a router gossips on the records topic for each request a node answered."""

    request_id: bytes
    workload: str
    node: str
    router: str
    output_hash: bytes
    hops: int

    TYPE = MsgType.RECORD
    KEYS = frozenset({"request_id", "workload", "node", "router", "output_hash", "hops"})

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {
            "request_id": self.request_id,
            "workload": self.workload,
            "node": self.node,
            "router": self.router,
            "output_hash": self.output_hash,
            "hops": self.hops,
        }

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "RouteRecord":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        output_hash = _get(value, "output_hash", bytes)
        if len(output_hash) != 32:
            raise FrameError("output_hash must be 32 bytes")
        return cls(
            request_id=_get(value, "request_id", bytes)[:16],
            workload=_name(value, "workload"),
            node=_get(value, "node", str)[:128],
            router=_get(value, "router", str)[:128],
            output_hash=output_hash,
            hops=_uint(value, "hops", MAX_PATH + 1),
        )


@dataclass(frozen=True)
class RecordBatch:
    """Records a router gossips together: one gossip message, and one signature, for many."""

    records: tuple[RouteRecord, ...]

    TYPE = MsgType.RECORDS
    KEYS = frozenset({"records"})
    # About 200 bytes each: a full batch stays well inside the 64 KiB gossip limit.
    MAX_RECORDS = 200

    def to_map(self) -> dict[str, Any]:
        """Return the map form."""
        return {"records": [record.to_map() for record in self.records]}

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> "RecordBatch":
        """Return the message in ``value`` or raise ``FrameError``."""
        _check_keys(value, cls.KEYS)
        items = _get(value, "records", list)
        if not 1 <= len(items) <= cls.MAX_RECORDS:
            raise FrameError(f"a record batch holds 1 to {cls.MAX_RECORDS} records")
        if not all(isinstance(item, dict) for item in items):
            raise FrameError("each record must be a map")
        return cls(tuple(RouteRecord.from_map(item) for item in items))


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
        RouteRecord,
        RecordBatch,
        Join,
    )
}


Message = (
    Hello
    | Load
    | Ping
    | Pong
    | Request
    | Response
    | SignedSummary
    | RouteRecord
    | RecordBatch
    | Join
)


# Messages that routers pass on unchanged, and so keep the frame they were read from.
RELAYED = (Request, Response)


def encode(message: Message) -> bytes:
    """Return the frame that carries ``message``."""
    frame = getattr(message, "frame", None)
    if frame is not None:
        return frame
    return encode_frame(message.TYPE, message.to_map())
