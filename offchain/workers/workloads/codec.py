"""Canonical byte encoding of named tensors: the bytes that receipts hash.

Layout (all integers big-endian, tensor data little-endian, C order):

    b"EMCT" | u8 version (=1) | u16 count | count x tensor
    tensor = u8 name_len | name (ASCII [a-z0-9_], 1..32 bytes) | u8 dtype | u8 ndim
             | ndim x u32 dim | data (prod(dims) * itemsize bytes)

Tensors appear in strictly increasing name order, so one value has exactly one encoding, and
decoding rejects anything else (unknown dtype, unsorted or repeated names, trailing bytes,
a declared size beyond the limit) before allocating the data. ``read_header`` applies the same
checks and returns only the names, dtypes and shapes, copying no data, so a caller can refuse
work by its declared shapes before anything is allocated; ``decode`` allocates at most the size
of its input, since every declared tensor must lie inside it.
"""

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from offchain.crypto.hashing import keccak
from offchain.workers.workload_errors import EncodingError

MAGIC = b"EMCT"
VERSION = 1
MAX_TENSORS = 16
MAX_NDIM = 4
MAX_NAME_BYTES = 32
# Default ceiling on one encoded message: two 4096 x 4096 float32 matrices and some headroom.
MAX_ENCODED_BYTES = 160 * 1024 * 1024

DTYPE_CODES: dict[str, int] = {"float32": 1, "float64": 2, "uint32": 3, "int64": 4}
CODE_DTYPES: dict[int, np.dtype] = {
    code: np.dtype(name).newbyteorder("<") for name, code in DTYPE_CODES.items()
}
# numpy refuses a shape whose dimensions (zeros aside) span 2**63 bytes or more, even if empty.
MAX_SPAN = 1 << 62
_NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_HEADER = struct.Struct(">4sBH")


def _check_name(name: str) -> bytes:
    """Return the ASCII bytes of a tensor name, or raise if it is not allowed."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise EncodingError(f"tensor name {name!r} must match [a-z0-9_]{{1,32}}")
    return name.encode("ascii")


def encode(tensors: Mapping[str, np.ndarray], max_bytes: int = MAX_ENCODED_BYTES) -> bytes:
    """Return the canonical bytes of ``tensors`` (a mapping of name to numpy array)."""
    if len(tensors) > MAX_TENSORS:
        raise EncodingError(f"{len(tensors)} tensors, at most {MAX_TENSORS}")
    parts = [_HEADER.pack(MAGIC, VERSION, len(tensors))]
    total = _HEADER.size
    for name in sorted(tensors):
        raw_name = _check_name(name)
        array = tensors[name]
        if not isinstance(array, np.ndarray):
            raise EncodingError(f"tensor {name!r} is a {type(array).__name__}, not a numpy array")
        code = DTYPE_CODES.get(array.dtype.name)
        if code is None:
            raise EncodingError(f"tensor {name!r} has unsupported dtype {array.dtype}")
        if array.ndim > MAX_NDIM:
            raise EncodingError(f"tensor {name!r} has {array.ndim} dimensions, at most {MAX_NDIM}")
        if any(d >= 2**32 for d in array.shape):
            raise EncodingError(f"tensor {name!r} has a dimension beyond 2**32")
        total += 3 + len(raw_name) + 4 * array.ndim + array.size * array.itemsize
        if total > max_bytes:
            raise EncodingError(f"encoding exceeds {max_bytes} bytes")
        parts.append(struct.pack(">B", len(raw_name)) + raw_name)
        parts.append(struct.pack(f">BB{array.ndim}I", code, array.ndim, *array.shape))
        parts.append(np.ascontiguousarray(array, dtype=CODE_DTYPES[code]).tobytes())
    return b"".join(parts)


@dataclass(frozen=True)
class TensorHeader:
    """A tensor as its encoding declares it: name, dtype name, shape, and where its data lies."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int


def read_header(data: bytes, max_bytes: int = MAX_ENCODED_BYTES) -> dict[str, TensorHeader]:
    """Return the declared tensors of canonical ``data`` by name (no data copied), or raise."""
    return {h.name: h for h in _walk(data, max_bytes)}


def decode(data: bytes, max_bytes: int = MAX_ENCODED_BYTES) -> dict[str, np.ndarray]:
    """Return the tensors of canonical ``data``, or raise ``EncodingError``."""
    view = memoryview(data)
    out: dict[str, np.ndarray] = {}
    for h in _walk(data, max_bytes):
        dtype = np.dtype(h.dtype).newbyteorder("<")
        array = np.frombuffer(view[h.offset : h.offset + h.nbytes], dtype=dtype).reshape(h.shape)
        out[h.name] = array.astype(dtype.newbyteorder("="), copy=True)
    return out


def encoded_size(shapes: Mapping[str, tuple[str, tuple[int, ...]]]) -> int:
    """Return the bytes that tensors of these (dtype name, shape) by name encode to."""
    total = _HEADER.size
    for name, (dtype, shape) in shapes.items():
        elements = 1
        for dim in shape:
            elements *= dim
        total += 3 + len(name) + 4 * len(shape) + elements * np.dtype(dtype).itemsize
    return total


def _walk(data: bytes, max_bytes: int) -> list[TensorHeader]:
    """Return each declared tensor of canonical ``data`` after checking all of it, or raise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EncodingError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise EncodingError(f"{len(data)} bytes, at most {max_bytes}")
    if len(data) < _HEADER.size:
        raise EncodingError("truncated header")
    magic, version, count = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise EncodingError("bad magic")
    if version != VERSION:
        raise EncodingError(f"unsupported encoding version {version}")
    if count > MAX_TENSORS:
        raise EncodingError(f"{count} tensors, at most {MAX_TENSORS}")
    view = memoryview(data)
    offset = _HEADER.size
    headers: list[TensorHeader] = []
    for _ in range(count):
        name, offset = _read_name(view, offset)
        if headers and name <= headers[-1].name:
            raise EncodingError(f"tensor names out of canonical order at {name!r}")
        header = _read_shape(view, offset, name)
        headers.append(header)
        offset = header.offset + header.nbytes
    if offset != len(data):
        raise EncodingError(f"{len(data) - offset} trailing bytes")
    return headers


def _read_name(view: memoryview, offset: int) -> tuple[str, int]:
    """Return the tensor name at ``offset`` and the offset after it."""
    if offset + 1 > len(view):
        raise EncodingError("truncated tensor name")
    length = view[offset]
    raw = bytes(view[offset + 1 : offset + 1 + length])
    if len(raw) != length:
        raise EncodingError("truncated tensor name")
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise EncodingError("tensor name is not ASCII") from exc
    _check_name(name)
    return name, offset + 1 + length


def _read_shape(view: memoryview, offset: int, name: str) -> TensorHeader:
    """Return the header of the tensor at ``offset`` (after its name); its data must fit."""
    if offset + 2 > len(view):
        raise EncodingError(f"truncated header of tensor {name!r}")
    code, ndim = view[offset], view[offset + 1]
    dtype = CODE_DTYPES.get(code)
    if dtype is None:
        raise EncodingError(f"tensor {name!r} has unknown dtype code {code}")
    if ndim > MAX_NDIM:
        raise EncodingError(f"tensor {name!r} has {ndim} dimensions, at most {MAX_NDIM}")
    offset += 2
    if offset + 4 * ndim > len(view):
        raise EncodingError(f"truncated shape of tensor {name!r}")
    shape = struct.unpack_from(f">{ndim}I", view, offset)
    offset += 4 * ndim
    # exact integers: four dimensions of 2**32 - 1 must not wrap around
    nbytes = span = dtype.itemsize
    for dim in shape:
        nbytes *= dim
        span *= max(dim, 1)
    if offset + nbytes > len(view):
        raise EncodingError(f"tensor {name!r} declares {nbytes} bytes beyond the message")
    if span >= MAX_SPAN:  # an empty tensor whose other dimensions numpy cannot represent
        raise EncodingError(f"tensor {name!r} has a shape too large to represent")
    return TensorHeader(name, dtype.name, tuple(shape), offset, nbytes)


def digest(tensors: Mapping[str, np.ndarray]) -> bytes:
    """Return keccak256 of the canonical encoding: the output hash a receipt carries."""
    return keccak(encode(tensors))
