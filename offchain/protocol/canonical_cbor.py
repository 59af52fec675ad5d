"""Canonical CBOR of the plain values our messages carry: a strict encoder and decoder.

Messages hold only maps with text keys, arrays, byte strings, text, integers of at most 64
bits, booleans and null. Their canonical encoding (RFC 8949 section 4.2) is simple enough to
write and check directly: definite lengths, minimal-length heads, and map keys ordered by their
encoded bytes, shorter first (section 4.2.3, the order cbor2's canonical mode uses, so
``dumps`` writes byte for byte what ``cbor2.dumps(value, canonical=True)`` writes).

``loads`` accepts exactly the bytes ``dumps`` can write and nothing else, in one pass: no tags
(so none of cbor2's value-sharing tags 28 and 29, whose cyclic and exponentially shared values
crash or stall a re-encode), no indefinite lengths, no floats or other simple values, no
non-minimal heads, no unordered or repeated keys, no invalid UTF-8, no trailing bytes. Every
declared length and count is checked against the bytes that remain before anything is built,
nesting is bounded, and each input byte is read once, so the work and memory spent on any input
are linear in its size. Since a value has one encoding, ``dumps(loads(data)) == data`` whenever
``loads`` accepts ``data``; no re-encode is needed to prove it.
"""

import struct
from typing import Any

from offchain.protocol.errors import InputRejected


class CborError(InputRejected):
    """Bytes that are not the canonical encoding of a message value."""

    reason = "cbor-malformed"


# Nesting of arrays and maps, at most: our messages nest three deep.
MAX_DEPTH = 16
# Items (of any kind, at any depth) in one decoded value, at most.
MAX_ITEMS = 100_000

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
        # Floats, big integers, tags, non-text keys: nothing ``loads`` would accept back.
        raise TypeError(f"cannot encode a {kind.__name__} in a message: {value!r:.60}")


def dumps(value: Any) -> bytes:
    """Return the canonical CBOR encoding of ``value``, the bytes cbor2's canonical mode writes.

    Raises ``TypeError`` for a value outside the message subset (see the module docstring).
    """
    out: list[bytes] = []
    _append(out, value)
    return b"".join(out)


def loads(data: bytes, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS) -> Any:
    """Return the value whose canonical encoding is ``data``, or raise ``CborError``."""
    decoder = _Decoder(bytes(data), max_depth, max_items)
    value = decoder.item(0)
    if decoder.pos != len(decoder.data):
        raise CborError(f"{len(decoder.data) - decoder.pos} trailing bytes", "cbor-trailing")
    return value


# Smallest argument each additional-information width may carry in a canonical head.
_MIN_ARGUMENT = {24: 24, 25: 0x100, 26: 0x10000, 27: 0x100000000}
_WIDTH = {24: 1, 25: 2, 26: 4, 27: 8}
_SIMPLE = {0xF4: False, 0xF5: True, 0xF6: None}


class _Decoder:
    """A cursor over one input; every check happens before the value it guards is built.

    ``item`` reads each head inline rather than through a helper: it runs once per decoded
    item on every frame an agent reads, so a call less per item is most of its cost.
    """

    __slots__ = ("data", "pos", "max_depth", "items", "end")

    def __init__(self, data: bytes, max_depth: int, max_items: int) -> None:
        self.data = data
        self.pos = 0
        self.max_depth = max_depth
        self.items = max_items
        self.end = len(data)

    def _argument(self, pos: int, info: int) -> int:
        """Return the argument of a head whose additional information is ``info`` >= 24.

        ``pos`` is the head's first byte; the cursor is moved past the head. The argument is
        checked to be in its shortest form.
        """
        if info == 31:
            raise CborError("indefinite length", "cbor-indefinite")
        width = _WIDTH.get(info)
        if width is None:
            raise CborError(f"reserved additional information {info}")
        end = pos + 1 + width
        if end > self.end:
            raise CborError("input ends inside a head", "cbor-truncated")
        argument = int.from_bytes(self.data[pos + 1 : end], "big")
        if argument < _MIN_ARGUMENT[info]:
            raise CborError("head not in its shortest form", "cbor-non-canonical")
        self.pos = end
        return argument

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > self.end:
            raise CborError(f"length {n} runs past the input", "cbor-truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def _count(self, n: int, min_size: int) -> None:
        """Check that ``n`` items, each of at least ``min_size`` bytes, can still follow."""
        if n * min_size > self.end - self.pos:
            raise CborError(f"count {n} runs past the input", "cbor-truncated")
        self.items -= n
        if self.items < 0:
            raise CborError("too many items", "cbor-too-many-items")

    def item(self, depth: int) -> Any:
        """Return the next item; ``depth`` is the number of arrays and maps around it."""
        pos = self.pos
        if pos >= self.end:
            raise CborError("input ends before an item", "cbor-truncated")
        initial = self.data[pos]
        major = initial >> 5
        if major == 7:
            if initial in _SIMPLE:
                self.pos = pos + 1
                return _SIMPLE[initial]
            if initial == 0xFF:
                raise CborError("break outside an indefinite item", "cbor-indefinite")
            raise CborError(f"simple value or float 0x{initial:02x}", "cbor-float")
        info = initial & 0x1F
        if info < 24:
            self.pos = pos + 1
            argument = info
        else:
            argument = self._argument(pos, info)
        if major == 0:
            return argument
        if major == 2:
            return self._take(argument)
        if major == 3:
            raw = self._take(argument)
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CborError(f"text is not UTF-8: {exc.reason}", "cbor-bad-text") from None
        if major == 1:
            return -1 - argument
        if major == 6:
            raise CborError(f"tag {argument}", "cbor-tag")
        if depth >= self.max_depth:
            raise CborError(f"nesting deeper than {self.max_depth}", "cbor-too-deep")
        if major == 4:
            self._count(argument, 1)
            return [self.item(depth + 1) for _ in range(argument)]
        return self._map(argument, depth)

    def _map(self, size: int, depth: int) -> dict[str, Any]:
        self._count(size, 2)
        data = self.data
        out: dict[str, Any] = {}
        previous = b""
        for _ in range(size):
            start = self.pos
            if start >= self.end:
                raise CborError("input ends before an item", "cbor-truncated")
            initial = data[start]
            if initial >> 5 != 3:
                raise CborError("map key is not text", "cbor-bad-key")
            info = initial & 0x1F
            if info < 24:
                self.pos = start + 1
                length = info
            else:
                length = self._argument(start, info)
            raw = self._take(length)
            encoded = data[start : self.pos]
            # Canonical order: shorter encodings first, then bytewise; strictly, so no repeats.
            if out and (len(encoded), encoded) <= (len(previous), previous):
                raise CborError("map keys out of canonical order or repeated", "cbor-non-canonical")
            previous = encoded
            try:
                key = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CborError(f"key is not UTF-8: {exc.reason}", "cbor-bad-text") from None
            out[key] = self.item(depth + 1)
        return out
