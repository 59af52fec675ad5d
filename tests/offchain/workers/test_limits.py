"""Requests refused from their declared shapes, before a node allocates or runs anything."""

import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from offchain.protocol.frames import MAX_BODY, MsgType
from offchain.protocol.wire import Request
from offchain.workers.node import MAX_OUTPUT_BYTES, NodeAgent, NodeConfig
from offchain.workers.workload_errors import EncodingError, InvalidInput, WorkloadError
from offchain.workers.workloads import (
    decode,
    encode,
    get_workload,
    read_header,
    workload_ids,
)
from offchain.workers.workloads.codec import MAX_TENSORS

ROUTER = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
MIB = 1 << 20
CI_EXAMPLES = 300
SLOW_EXAMPLES = 20_000


def f32(*shape: int) -> np.ndarray:
    return np.ones(shape, dtype=np.float32)


def declared(data: bytes) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {name: (h.dtype, h.shape) for name, h in read_header(data).items()}


# Small valid inputs for every registered workload (a new workload must add its own).
SMALL_INPUTS = {
    "matmul-f32": lambda: {"a": f32(3, 4), "b": f32(4, 2)},
    "matmul-modp": lambda: {
        "a": np.arange(12, dtype=np.uint32).reshape(3, 4),
        "b": np.arange(8, dtype=np.uint32).reshape(4, 2),
    },
    "mlp-infer": lambda: {"x": f32(5, 64)},
    "cnn-infer": lambda: {"x": f32(2, 1, 28, 28)},
    "nbody-step": lambda: {
        "pos": np.arange(12, dtype=np.float64).reshape(4, 3),
        "vel": np.zeros((4, 3)),
        "mass": np.ones(4),
        "dt": np.array(0.01),
    },
}


def test_max_output_bytes__one_response_frame_less_room_for_its_other_fields():
    assert MAX_OUTPUT_BYTES == MAX_BODY[MsgType.RESPONSE] - 16 * 1024 == 4 * MIB


def test_plan__every_registered_workload__output_shapes_and_bytes_from_declared_shapes():
    assert set(SMALL_INPUTS) == set(workload_ids())
    for wid in workload_ids():
        workload = get_workload(wid)
        payload = encode(SMALL_INPUTS[wid]())
        plan = workload.plan(declared(payload), max_output_bytes=MAX_OUTPUT_BYTES)
        outputs = workload.run(decode(payload), device="cpu")
        assert plan.outputs == {n: (a.dtype.name, a.shape) for n, a in outputs.items()}, wid
        assert plan.output_bytes == len(encode(outputs)), wid
        assert plan.units == workload.units(decode(payload)), wid


def test_plan__matmul_8192x1_by_1x8192__refused_for_its_output_elements():
    payload = encode({"a": f32(8192, 1), "b": f32(1, 8192)})
    assert len(payload) < 65 * 1024
    with pytest.raises(InvalidInput, match="67108864 elements, at most 16777216"):
        get_workload("matmul-f32").plan(declared(payload))


def test_plan__output_within_the_schema_but_beyond_a_response__refused():
    payload = encode({"a": f32(4096, 1), "b": f32(1, 4096)})  # a 64 MiB output
    workload = get_workload("matmul-f32")
    assert workload.plan(declared(payload)).output_bytes > 64 * MIB
    with pytest.raises(InvalidInput, match="beyond the 4194304 a response holds"):
        workload.plan(declared(payload), max_output_bytes=MAX_OUTPUT_BYTES)
    fits = encode({"a": f32(1024, 1), "b": f32(1, 1024)})  # exactly 4 MiB of data, plus header
    with pytest.raises(InvalidInput, match="a response holds"):
        workload.plan(declared(fits), max_output_bytes=MAX_OUTPUT_BYTES)
    workload.plan(declared(encode({"a": f32(1023, 1), "b": f32(1, 1024)})), MAX_OUTPUT_BYTES)


def test_plan__work_beyond_the_unit_limit__refused():
    workload = get_workload("matmul-f32")
    shapes = declared(encode({"a": f32(100, 100), "b": f32(100, 100)}))  # 2 units
    assert workload.plan(shapes, max_units=2).units == 2
    with pytest.raises(InvalidInput, match="2 compute units, at most 1"):
        workload.plan(shapes, max_units=1)


def test_plan__declared_shapes_outside_the_input_schema__refused_like_arrays():
    workload = get_workload("matmul-f32")
    with pytest.raises(InvalidInput, match="k = 3"):
        workload.plan({"a": ("float32", (2, 3)), "b": ("float32", (4, 2))})
    with pytest.raises(InvalidInput, match="dtype"):
        workload.plan({"a": ("float64", (2, 3)), "b": ("float32", (3, 2))})
    with pytest.raises(InvalidInput, match="outside"):
        workload.plan({"a": ("float32", (1, 8193)), "b": ("float32", (8193, 1))})


def test_run__output_beyond_its_schema__refused_before_running():
    with pytest.raises(InvalidInput, match="elements"):
        get_workload("matmul-f32").run({"a": f32(8192, 1), "b": f32(1, 8192)}, device="cpu")


async def test_execute__matmul_bomb__workload_error_with_small_peak_allocation():
    node = NodeAgent(NodeConfig(routers=[ROUTER], workloads=["matmul-f32"]))
    payload = encode({"a": f32(8192, 1), "b": f32(1, 8192)})
    tracemalloc.start()
    try:
        reply = await node.execute(Request(b"q" * 16, "matmul-f32", payload))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not reply.ok and reply.error == "workload-error"
    assert "elements" in reply.message
    assert peak < 2 * MIB  # the output would be 256 MiB


async def test_execute__output_beyond_a_response__workload_error_before_decoding():
    node = NodeAgent(NodeConfig(routers=[ROUTER], workloads=["matmul-f32"]))
    payload = encode({"a": f32(2048, 1), "b": f32(1, 2048)})  # a 16 MiB output
    tracemalloc.start()
    try:
        reply = await node.execute(Request(b"q" * 16, "matmul-f32", payload))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not reply.ok and reply.error == "workload-error"
    assert "a response holds" in reply.message
    assert peak < 2 * MIB


# --- fuzzing the codec -------------------------------------------------------------------


def one(name: bytes, code: int, shape: tuple[int, ...], data: bytes) -> bytes:
    return (
        struct.pack(">B", len(name))
        + name
        + struct.pack(f">BB{len(shape)}I", code, len(shape), *shape)
        + data
    )


VALID = [
    encode({"a": f32(2, 3), "b": f32(3, 2)}),
    encode({"dt": np.array(0.5), "mass": np.ones(3), "pos": np.zeros((3, 3))}),
    encode({"x": np.arange(6, dtype=np.uint32).reshape(1, 2, 3), "y": np.zeros(0, np.int64)}),
    encode({}),
]
BOMBS = [
    b"EMCT\x01\x00\x01" + one(b"x", 1, (2**32 - 1,) * 4, b""),
    b"EMCT\x01\x00\x01" + one(b"x", 4, (0, 2**32 - 1, 2**32 - 1, 2**32 - 1), b""),
    b"EMCT\x01\x00\x01" + one(b"x", 1, (8192, 8192), b"\0" * 64),
    b"EMCT\x01\xff\xff",
    b"EMCT\x01\x00" + bytes([MAX_TENSORS]) + one(b"a", 1, (1,), b"\0" * 4),
]


@st.composite
def mutated(draw) -> bytes:
    """A valid encoding with a few structural mutations applied."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["dim", "count", "insert", "delete", "flip", "truncate", "swap"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "dim" and at + 4 <= len(data):
            data[at : at + 4] = struct.pack(">I", draw(st.sampled_from([0, 1, 7, 2**32 - 1])))
        elif op == "count" and len(data) >= 7:
            data[5:7] = struct.pack(">H", draw(st.sampled_from([0, 2, 17, 65_535])))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[at:]
        elif op == "swap" and len(data) > 8 and data[7] == 1:
            data[8] = ord("z")  # the first name after the second: out of order
    return bytes(data)


def inputs():
    return st.one_of(st.binary(max_size=512), mutated(), st.sampled_from(BOMBS))


def check_codec(data: bytes) -> None:
    """Only workload errors come out, decoding allocates about the input's size, and the
    header reader is exactly as strict as the decoder."""
    try:
        headers = read_header(data)
    except EncodingError:
        headers = None
    tracemalloc.start()
    try:
        try:
            tensors = decode(data)
        except EncodingError:
            tensors = None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 2 * len(data) + 64 * 1024
    assert (headers is None) == (tensors is None)
    if tensors is not None:
        assert {n: (h.dtype, h.shape) for n, h in headers.items()} == {
            n: (a.dtype.name, a.shape) for n, a in tensors.items()
        }
        assert encode(tensors) == data
    for wid in ("matmul-f32", "nbody-step"):
        if headers is not None:
            try:
                get_workload(wid).plan(declared(data), MAX_OUTPUT_BYTES)
            except WorkloadError:
                pass


@settings(max_examples=CI_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs())
@example(BOMBS[0])
@example(BOMBS[1])
def test_codec__arbitrary_and_mutated_bytes__only_workload_errors_and_bounded_allocation(data):
    check_codec(data)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(inputs())
def test_codec__many_arbitrary_and_mutated_bytes__only_workload_errors(data):
    check_codec(data)


def test_decode__bomb_with_huge_declared_dims__refused_allocating_under_its_input_size():
    bomb = b"EMCT\x01\x00\x01" + one(b"x", 2, (2**20, 2**20), b"\0" * 1024)  # 8 TiB declared
    tracemalloc.start()
    try:
        with pytest.raises(EncodingError, match="beyond the message"):
            decode(bomb)
        with pytest.raises(EncodingError, match="beyond the message"):
            read_header(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024
