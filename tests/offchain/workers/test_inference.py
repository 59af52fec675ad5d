import numpy as np
import pytest
import torch

from offchain.workers.workloads import get_workload
from offchain.workers.workloads.inference import CHUNK

SHAPES = {"mlp-infer": (64,), "cnn-infer": (1, 28, 28)}


def float64_reference(wid: str, x: np.ndarray) -> np.ndarray:
    model = get_workload(wid).build_model().double()
    with torch.no_grad():
        return model(torch.from_numpy(x.astype(np.float64))).numpy()


@pytest.mark.parametrize("wid", sorted(SHAPES))
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_run__fresh_inputs__agree_with_float64(wid, batch):
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, *SHAPES[wid])).astype(np.float32)
    y = get_workload(wid).run({"x": x}, device="cpu")["y"]
    assert y.shape == (batch, 10) and y.dtype == np.float32
    np.testing.assert_allclose(y, float64_reference(wid, x), rtol=1e-4, atol=1e-5)


def test_run__batch_beyond_one_chunk__rows_independent_of_batching():
    w = get_workload("mlp-infer")
    x = np.random.default_rng(9).standard_normal((CHUNK + 5, 64)).astype(np.float32)
    whole = w.run({"x": x}, device="cpu")["y"]
    tail = w.run({"x": x[-5:]}, device="cpu")["y"]
    np.testing.assert_allclose(whole[-5:], tail, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("wid", sorted(SHAPES))
def test_build_model__same_seed_same_weights_eval_mode(wid):
    w = get_workload(wid)
    first, second = w.build_model(), w.build_model()
    assert not first.training
    for p, q in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(p, q)
    other = type(w)()
    other.model_seed = w.model_seed + 1
    assert not torch.equal(next(other.build_model().parameters()), next(first.parameters()))
