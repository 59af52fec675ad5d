import numpy as np
import pytest

from offchain.workers.verifiers import U32, gamma
from offchain.workers.workloads import get_workload

SHAPES = [(1, 1, 1), (3, 5, 7), (64, 1, 33), (1, 300, 1), (127, 129, 65), (256, 256, 256)]


@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
def test_run__random_inputs__within_float32_bound_of_float64(m, k, n):
    rng = np.random.default_rng(m * 1_000 + k * 10 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = (rng.standard_normal((k, n)) * 3).astype(np.float32)
    c = get_workload("matmul-f32").run({"a": a, "b": b}, device="cpu")["c"]
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = gamma(k + 1, U32) * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    assert c.dtype == np.float32 and c.shape == (m, n)
    assert (np.abs(c - exact) <= bound).all()


def test_run__verifier_accepts_honest_output():
    rng = np.random.default_rng(1)
    w = get_workload("matmul-f32")
    for m, k, n in SHAPES:
        inputs = {
            "a": rng.standard_normal((m, k)).astype(np.float32),
            "b": rng.standard_normal((k, n)).astype(np.float32),
        }
        assert w.verify(inputs, w.run(inputs, device="cpu"), rng).accepted
