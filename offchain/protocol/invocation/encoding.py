"""The one canonical encoding of requests, receipts and records: maps in strict canonical CBOR.

Field names are the EIP-712 field names. Addresses are 20-byte strings, hashes 32-byte strings,
signatures 65-byte strings. A ``uint64`` is a CBOR integer; a ``uint256`` (socket id, prices,
nonce), too wide for the 64-bit integers the project's CBOR carries, is its big-endian bytes
without leading zeros (zero is the empty string), so each value still has exactly one
encoding. ``*_from_map`` checks every field (presence, type, size, range, no extra keys) and
raises ``MalformedInvocation``; ``decode_*`` also refuses bytes ``loads`` refuses
(``CborError``). Both are ``InputRejected``.
"""

from typing import Any

from offchain.protocol.canonical_cbor import dumps, loads
from offchain.protocol.invocation.constants import (
    ADDRESS_BYTES,
    HASH_BYTES,
    MAX_UINT64,
    MAX_WORKLOAD_BYTES,
    SIGNATURE_BYTES,
    WORKLOAD_FIRST_CHAR,
    WORKLOAD_LAST_CHAR,
)
from offchain.protocol.invocation.eip712 import address_from_bytes
from offchain.protocol.invocation.invocation_errors import MalformedInvocation
from offchain.protocol.invocation.types import InvocationRecord, InvocationRequest, Receipt

REQUEST_KEYS = frozenset(
    {"user", "socket_id", "workload", "input_hash", "max_price", "nonce", "deadline"}
)
RECEIPT_KEYS = frozenset({"request_hash", "output_hash", "units", "price", "worker", "router"})
RECORD_KEYS = frozenset(
    {"request", "user_signature", "receipt", "node_signature", "router_signature"}
)

# The largest encoding ``decode_*`` reads: a record is about 600 bytes at the widest values.
MAX_ENCODED_BYTES = 2_048
# A record nests two maps in one; no encoding here needs more depth or items than these.
_MAX_DEPTH = 2
_MAX_ITEMS = 64


def _uint256_bytes(value: int) -> bytes:
    """Return ``value``'s big-endian bytes without leading zeros (empty for zero)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _address_bytes(address: str) -> bytes:
    return bytes.fromhex(address[2:])


def request_to_map(request: InvocationRequest) -> dict[str, Any]:
    """Return the map form of ``request``."""
    return {
        "user": _address_bytes(request.user),
        "socket_id": _uint256_bytes(request.socket_id),
        "workload": request.workload,
        "input_hash": request.input_hash,
        "max_price": _uint256_bytes(request.max_price),
        "nonce": _uint256_bytes(request.nonce),
        "deadline": request.deadline,
    }


def receipt_to_map(receipt: Receipt) -> dict[str, Any]:
    """Return the map form of ``receipt``."""
    return {
        "request_hash": receipt.request_hash,
        "output_hash": receipt.output_hash,
        "units": receipt.units,
        "price": _uint256_bytes(receipt.price),
        "worker": _address_bytes(receipt.worker),
        "router": _address_bytes(receipt.router),
    }


def record_to_map(record: InvocationRecord) -> dict[str, Any]:
    """Return the map form of ``record``."""
    return {
        "request": request_to_map(record.request),
        "user_signature": record.user_signature,
        "receipt": receipt_to_map(record.receipt),
        "node_signature": record.node_signature,
        "router_signature": record.router_signature,
    }


# ----------------------------------------------------------------------------------------------
# Strict reading
# ----------------------------------------------------------------------------------------------


def _fields(value: Any, keys: frozenset[str], what: str) -> dict[str, Any]:
    """Return ``value`` if it is a map with exactly ``keys``, else raise."""
    if type(value) is not dict:
        raise MalformedInvocation(f"{what} is a {type(value).__name__}, not a map")
    if value.keys() != keys:
        missing = sorted(keys - value.keys())
        extra = sorted(map(repr, value.keys() - keys))
        raise MalformedInvocation(f"{what}: missing {missing}, unknown {extra}")
    return value


def _bytes(value: dict[str, Any], key: str, size: int) -> bytes:
    item = value[key]
    if type(item) is not bytes or len(item) != size:
        raise MalformedInvocation(f"{key} must be {size} bytes")
    return item


def _address(value: dict[str, Any], key: str) -> str:
    return address_from_bytes(_bytes(value, key, ADDRESS_BYTES))


def _uint64(value: dict[str, Any], key: str) -> int:
    item = value[key]
    if type(item) is not int or not 0 <= item <= MAX_UINT64:
        raise MalformedInvocation(f"{key} must be an integer in [0, 2**64)")
    return item


def _uint256(value: dict[str, Any], key: str) -> int:
    item = value[key]
    if type(item) is not bytes or len(item) > 32:
        raise MalformedInvocation(f"{key} must be at most 32 bytes")
    if item[:1] == b"\x00":
        raise MalformedInvocation(f"{key} has a leading zero byte")
    return int.from_bytes(item, "big")


def _workload(value: dict[str, Any], key: str) -> str:
    item = value[key]
    if type(item) is not str or not 0 < len(item) <= MAX_WORKLOAD_BYTES:
        raise MalformedInvocation(f"{key} must be 1 to {MAX_WORKLOAD_BYTES} characters")
    if not all(WORKLOAD_FIRST_CHAR <= ord(char) <= WORKLOAD_LAST_CHAR for char in item):
        raise MalformedInvocation(f"{key} must be printable ASCII without spaces")
    return item


def request_from_map(value: Any) -> InvocationRequest:
    """Return the request in ``value``, or raise ``MalformedInvocation``."""
    value = _fields(value, REQUEST_KEYS, "request")
    return InvocationRequest(
        user=_address(value, "user"),
        socket_id=_uint256(value, "socket_id"),
        workload=_workload(value, "workload"),
        input_hash=_bytes(value, "input_hash", HASH_BYTES),
        max_price=_uint256(value, "max_price"),
        nonce=_uint256(value, "nonce"),
        deadline=_uint64(value, "deadline"),
    )


def receipt_from_map(value: Any) -> Receipt:
    """Return the receipt in ``value``, or raise ``MalformedInvocation``."""
    value = _fields(value, RECEIPT_KEYS, "receipt")
    return Receipt(
        request_hash=_bytes(value, "request_hash", HASH_BYTES),
        output_hash=_bytes(value, "output_hash", HASH_BYTES),
        units=_uint64(value, "units"),
        price=_uint256(value, "price"),
        worker=_address(value, "worker"),
        router=_address(value, "router"),
    )


def record_from_map(value: Any) -> InvocationRecord:
    """Return the record in ``value``, or raise ``MalformedInvocation``."""
    value = _fields(value, RECORD_KEYS, "record")
    return InvocationRecord(
        request=request_from_map(value["request"]),
        user_signature=_bytes(value, "user_signature", SIGNATURE_BYTES),
        receipt=receipt_from_map(value["receipt"]),
        node_signature=_bytes(value, "node_signature", SIGNATURE_BYTES),
        router_signature=_bytes(value, "router_signature", SIGNATURE_BYTES),
    )


def _load(data: bytes) -> Any:
    """Return the CBOR value in ``data``, bounded in size, depth and items."""
    if type(data) is not bytes:
        raise MalformedInvocation(f"an encoding is bytes, not {type(data).__name__}")
    if len(data) > MAX_ENCODED_BYTES:
        raise MalformedInvocation(f"{len(data)} bytes, over {MAX_ENCODED_BYTES}")
    return loads(data, max_depth=_MAX_DEPTH, max_items=_MAX_ITEMS)


def encode_request(request: InvocationRequest) -> bytes:
    """Return the canonical encoding of ``request``."""
    return dumps(request_to_map(request))


def encode_receipt(receipt: Receipt) -> bytes:
    """Return the canonical encoding of ``receipt``."""
    return dumps(receipt_to_map(receipt))


def encode_record(record: InvocationRecord) -> bytes:
    """Return the canonical encoding of ``record``."""
    return dumps(record_to_map(record))


def decode_request(data: bytes) -> InvocationRequest:
    """Return the request encoded in ``data``, or raise an ``InputRejected``."""
    return request_from_map(_load(data))


def decode_receipt(data: bytes) -> Receipt:
    """Return the receipt encoded in ``data``, or raise an ``InputRejected``."""
    return receipt_from_map(_load(data))


def decode_record(data: bytes) -> InvocationRecord:
    """Return the record encoded in ``data``, or raise an ``InputRejected``."""
    return record_from_map(_load(data))
