import struct

import numpy as np
import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from offchain.workers.workload_errors import EncodingError
from offchain.workers.workloads.codec import MAX_TENSORS, decode, digest, encode


def sample() -> dict[str, np.ndarray]:
    return {
        "b": np.arange(6, dtype=np.uint32).reshape(2, 3),
        "a": np.array([1.5, -2.0], dtype=np.float32),
        "dt": np.array(0.25),
        "e": np.zeros((0, 4), dtype=np.int64),
    }


def test_roundtrip__every_dtype_and_shape__equal_values():
    tensors = sample()
    back = decode(encode(tensors))
    assert list(back) == sorted(tensors)
    for name, array in tensors.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        assert np.array_equal(back[name], array)


def test_encode__insertion_order_and_layout__same_bytes():
    tensors = sample()
    reordered = {k: np.asfortranarray(v) if v.ndim > 1 else v for k, v in reversed(tensors.items())}
    assert encode(tensors) == encode(reordered)
    assert digest(tensors) == keccak(encode(tensors))


def test_encode__different_values__different_digest():
    tensors = sample()
    other = dict(tensors, a=np.array([1.5, -2.5], dtype=np.float32))
    assert digest(tensors) != digest(other)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.uint32, np.int64]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
    )
)
def test_roundtrip__random_arrays__bit_identical(array):
    back = decode(encode({"x": array}))["x"]
    assert back.tobytes() == np.ascontiguousarray(array).tobytes()


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ({"Bad": np.zeros(1, np.float32)}, "name"),
        ({"x": np.zeros(1, np.float16)}, "dtype"),
        ({"x": [1, 2]}, "numpy array"),
        ({"x": np.zeros((1,) * 5, np.float32)}, "dimensions"),
        ({f"t{i}": np.zeros(1, np.uint32) for i in range(MAX_TENSORS + 1)}, "tensors"),
    ],
)
def test_encode__bad_tensors__refused(tensors, message):
    with pytest.raises(EncodingError, match=message):
        encode(tensors)


def test_encode__over_limit__refused():
    with pytest.raises(EncodingError, match="exceeds"):
        encode({"x": np.zeros(100, np.float64)}, max_bytes=500)


def one(name: bytes, code: int, shape: tuple[int, ...], data: bytes) -> bytes:
    head = (
        struct.pack(">B", len(name))
        + name
        + struct.pack(f">BB{len(shape)}I", code, len(shape), *shape)
    )
    return head + data


Z4 = b"\0" * 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"EMC", "truncated header"),
        (b"XXXX\x01\x00\x00", "magic"),
        (b"EMCT\x02\x00\x00", "version"),
        (b"EMCT\x01\x00\x01" + one(b"x", 1, (2,), b"\x00" * 8) + b"\x00", "trailing"),
        (b"EMCT\x01\x00\x01" + one(b"x", 1, (3,), b"\x00" * 8), "beyond the message"),
        (b"EMCT\x01\x00\x01" + one(b"x", 9, (2,), b"\x00" * 8), "unknown dtype"),
        (b"EMCT\x01\x00\x01" + one(b"X", 1, (2,), b"\x00" * 8), "name"),
        (
            b"EMCT\x01\x00\x02" + one(b"b", 1, (1,), b"\0" * 4) + one(b"a", 1, (1,), b"\0" * 4),
            "order",
        ),
        (
            b"EMCT\x01\x00\x02" + one(b"a", 1, (1,), b"\0" * 4) + one(b"a", 1, (1,), b"\0" * 4),
            "order",
        ),
        (b"EMCT\x01\x00\x01" + one(b"x", 1, (2**31, 2**31), b""), "beyond the message"),
        (b"EMCT\x01\x00\x02" + one(b"x", 1, (1,), b"\0" * 4), "truncated"),
    ],
)
def test_decode__malformed__refused(data, message):
    with pytest.raises(EncodingError, match=message):
        decode(data)


def test_decode__over_limit__refused_before_parsing():
    with pytest.raises(EncodingError, match="at most"):
        decode(encode({"x": np.zeros(100, np.float64)}), max_bytes=100)
