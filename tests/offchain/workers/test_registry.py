import numpy as np
import pytest
import torch
from numba import cuda

from offchain.workers.kernels.modp import P
from offchain.workers.workload_errors import DeviceUnavailable, InvalidInput, UnknownWorkload
from offchain.workers.workloads import OPS_PER_UNIT, get_workload, workload_ids
from offchain.workers.workloads.matmul_f32 import MatmulF32

RNG = np.random.default_rng(0)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


U0 = np.zeros((2, 2), np.uint32)
BODIES = {"pos": np.zeros((2, 3)), "vel": np.zeros((2, 3)), "mass": np.ones(2), "dt": np.array(0.1)}


def test_registry__lists_the_workloads():
    assert workload_ids() == ["cnn-infer", "matmul-f32", "matmul-modp", "mlp-infer", "nbody-step"]
    for wid in workload_ids():
        w = get_workload(wid)
        assert w.id == wid and w.version >= 1 and w.price_units > 0 and w.catch_statement


@pytest.mark.parametrize("wid", ["matmul", "", "MATMUL-F32", None, 3])
def test_get_workload__unknown_id__refused(wid):
    with pytest.raises(UnknownWorkload, match="unknown workload"):
        get_workload(wid)


def test_get_workload__other_version__refused():
    assert get_workload("matmul-f32", version=1).id == "matmul-f32"
    with pytest.raises(UnknownWorkload, match="version 2"):
        get_workload("matmul-f32", version=2)


class CountingF32(MatmulF32):
    """The real workload, counting how often its runner starts."""

    def __init__(self):
        self.started = 0

    def _run_cpu(self, inputs, sizes):
        self.started += 1
        return super()._run_cpu(inputs, sizes)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"a": f32(2, 3)}, "missing"),
        ({"a": f32(2, 3), "b": f32(3, 2), "c": f32(1)}, "unexpected"),
        ({"a": f32(2, 3), "b": f32(4, 2)}, "k = 3"),
        ({"a": f32(2, 3).astype(np.float64), "b": f32(3, 2)}, "dtype"),
        ({"a": f32(2, 3, 1), "b": f32(3, 2)}, "dimensions"),
        ({"a": f32(2, 0), "b": f32(0, 2)}, "outside"),
        ({"a": f32(1, 8193), "b": f32(8193, 1)}, "outside"),
        ({"a": np.full((2, 2), np.nan, np.float32), "b": f32(2, 2)}, "finite"),
        (
            {"a": np.full((2, 2), 1e30, np.float32), "b": np.full((2, 2), 1e30, np.float32)},
            "overflow",
        ),
        ({"a": [[1.0]], "b": f32(1, 1)}, "numpy array"),
        ("not a mapping", "mapping"),
    ],
)
def test_run__malformed_inputs__refused_before_work(inputs, message):
    w = CountingF32()
    with pytest.raises(InvalidInput, match=message):
        w.run(inputs)
    assert w.started == 0


@pytest.mark.parametrize(
    ("wid", "inputs", "message"),
    [
        (
            "matmul-modp",
            {"a": np.full((2, 2), P, np.uint32), "b": np.zeros((2, 2), np.uint32)},
            "\\[0, ",
        ),
        ("mlp-infer", {"x": f32(3, 63)}, "axis 1"),
        ("cnn-infer", {"x": f32(2, 1, 28, 27)}, "axis 3"),
        ("cnn-infer", {"x": f32(8193, 1, 28, 28)}, "outside"),
        (
            "nbody-step",
            {
                "pos": np.zeros((2, 3)),
                "vel": np.zeros((2, 3)),
                "mass": -np.ones(2),
                "dt": np.array(0.1),
            },
            "non-negative",
        ),
        (
            "nbody-step",
            {
                "pos": np.zeros((2, 3)),
                "vel": np.zeros((2, 3)),
                "mass": np.ones(2),
                "dt": np.array(0.0),
            },
            "dt",
        ),
    ],
)
def test_validate__bad_values__refused(wid, inputs, message):
    with pytest.raises(InvalidInput, match=message):
        get_workload(wid).validate(inputs)


def test_units__metered_from_the_shape():
    w = get_workload("matmul-f32")
    inputs = {"a": f32(100, 200), "b": f32(200, 300)}
    assert w.units(inputs) == -(-2 * 100 * 200 * 300 // OPS_PER_UNIT)
    assert w.price(inputs) == w.units(inputs) * w.price_units
    assert w.units({"a": f32(1, 1), "b": f32(1, 1)}) == 1
    mlp = get_workload("mlp-infer")
    assert mlp.units({"x": f32(2000, 64)}) > mlp.units({"x": f32(1000, 64)})


def test_verify__malformed_output__rejected_with_reason():
    w = get_workload("matmul-f32")
    inputs = {"a": f32(4, 3), "b": f32(3, 5)}
    verdict = w.verify(inputs, {"c": f32(4, 4)}, RNG)
    assert not verdict.accepted and "malformed output" in verdict.reason
    verdict = w.verify(inputs, {"c": f32(4, 5).astype(np.float64)}, RNG)
    assert not verdict.accepted and "dtype" in verdict.reason


def test_select_device__unknown_device__refused():
    with pytest.raises(DeviceUnavailable, match="unknown device"):
        get_workload("matmul-f32").select_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_select_device__no_gpu__cpu_by_default_and_cuda_refused():
    for wid in ("matmul-f32", "mlp-infer"):
        assert get_workload(wid).select_device(None) == "cpu"
        with pytest.raises(DeviceUnavailable, match="no CUDA device"):
            get_workload(wid).select_device("cuda")


@pytest.mark.skipif(cuda.is_available(), reason="this machine has a GPU")
def test_select_device__no_gpu__numba_workloads_use_cpu():
    for wid in ("matmul-modp", "nbody-step"):
        assert get_workload(wid).select_device(None) == "cpu"
