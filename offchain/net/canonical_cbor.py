"""Canonical CBOR encoding of the plain values our messages carry, a few times faster than cbor2.

``cbor2.dumps(value, canonical=True)`` costs about 15 us for a five-field request, and every
routed request is encoded four times and decoded (which re-encodes, to check canonical form)
four times on its way. Messages hold only maps with string keys, lists, byte strings, text,
integers, booleans and None, whose canonical encoding is simple enough to build directly:
minimal-length heads, and map keys ordered by their encoded bytes, shorter first (RFC 8949
section 4.2.3, the order cbor2 uses). Anything else (floats, big integers, tags) is handed to
cbor2 itself, value by value, so the output is always byte-for-byte what cbor2 would write.
"""

import struct
from typing import Any

import cbor2

_U8 = struct.Struct(">BB")
_U16 = struct.Struct(">BH")
_U32 = struct.Struct(">BI")
_U64 = struct.Struct(">BQ")
_MAX_U64 = (1 << 64) - 1
# Map key orders and encoded keys are cached per key set: messages reuse a few schemas, and
# the caps keep a peer sending maps with ever new keys from growing the caches.
_CACHE_CAP = 512
_key_orders: dict[tuple[str, ...], tuple[tuple[str, bytes], ...]] = {}

MAJOR_UINT, MAJOR_NINT, MAJOR_BYTES, MAJOR_TEXT, MAJOR_ARRAY, MAJOR_MAP = 0, 1, 2, 3, 4, 5
FALSE, TRUE, NULL = b"\xf4", b"\xf5", b"\xf6"


def head(major: int, n: int) -> bytes:
    """Return the shortest head for major type ``major`` with argument ``n`` (0 <= n < 2**64)."""
    initial = major << 5
    if n < 24:
        return bytes((initial | n,))
    if n < 0x100:
        return _U8.pack(initial | 24, n)
    if n < 0x10000:
        return _U16.pack(initial | 25, n)
    if n < 0x100000000:
        return _U32.pack(initial | 26, n)
    return _U64.pack(initial | 27, n)


def _text(value: str) -> bytes:
    data = value.encode()
    return head(MAJOR_TEXT, len(data)) + data


def _key_order(keys: tuple[Any, ...]) -> tuple[tuple[str, bytes], ...] | None:
    """Return the keys with their encodings in canonical order; None unless all are text."""
    order = _key_orders.get(keys)
    if order is None:
        if not all(type(key) is str for key in keys):
            return None
        encoded = [(key, _text(key)) for key in keys]
        order = tuple(sorted(encoded, key=lambda pair: (len(pair[1]), pair[1])))
        if len(_key_orders) < _CACHE_CAP:
            _key_orders[keys] = order
    return order


def _append(out: list[bytes], value: Any) -> None:
    kind = type(value)
    if kind is bytes:
        out.append(head(MAJOR_BYTES, len(value)))
        out.append(value)
    elif kind is str:
        data = value.encode()
        out.append(head(MAJOR_TEXT, len(data)))
        out.append(data)
    elif kind is bool:
        out.append(TRUE if value else FALSE)
    elif kind is int and 0 <= value <= _MAX_U64:
        out.append(head(MAJOR_UINT, value))
    elif kind is int and -_MAX_U64 - 1 <= value < 0:
        out.append(head(MAJOR_NINT, -1 - value))
    elif kind is dict and (order := _key_order(tuple(value))) is not None:
        out.append(head(MAJOR_MAP, len(value)))
        for key, encoded_key in order:
            out.append(encoded_key)
            _append(out, value[key])
    elif kind is list or kind is tuple:
        out.append(head(MAJOR_ARRAY, len(value)))
        for item in value:
            _append(out, item)
    elif value is None:
        out.append(NULL)
    else:
        out.append(cbor2.dumps(value, canonical=True))


def dumps(value: Any) -> bytes:
    """Return the canonical CBOR encoding of ``value``, the bytes cbor2's canonical mode writes."""
    out: list[bytes] = []
    _append(out, value)
    return b"".join(out)
