import numpy as np
import pytest

from offchain.workers.workloads import get_workload
from offchain.workers.workloads.nbody import EPS2


def cloud(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "pos": rng.uniform(-1, 1, (n, 3)),
        "vel": rng.normal(0, 0.1, (n, 3)),
        "mass": rng.uniform(0.5, 1.5, n) / n,
        "dt": np.array(0.01),
    }


def reference_step(inputs):
    """Float64 numpy broadcasting: every pair, in one expression."""
    pos, vel, mass, dt = inputs["pos"], inputs["vel"], inputs["mass"], float(inputs["dt"])
    d = pos[None, :, :] - pos[:, None, :]
    r2 = (d**2).sum(axis=2) + EPS2
    acc = (mass[None, :, None] * d / (r2 * np.sqrt(r2))[:, :, None]).sum(axis=1)
    new_vel = vel + dt * acc
    return pos + dt * new_vel, new_vel


@pytest.mark.parametrize("n", [1, 2, 17, 200])
def test_run__random_cloud__agrees_with_numpy_reference(n):
    inputs = cloud(n, n)
    out = get_workload("nbody-step").run(inputs, device="cpu")
    pos, vel = reference_step(inputs)
    np.testing.assert_allclose(out["vel"], vel, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out["pos"], pos, rtol=1e-12, atol=1e-14)


def test_run__two_bodies__equal_and_opposite_momentum_change():
    inputs = cloud(2, 0)
    out = get_workload("nbody-step").run(inputs, device="cpu")
    change = inputs["mass"][:, None] * (out["vel"] - inputs["vel"])
    np.testing.assert_allclose(change[0], -change[1], rtol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 17, 300])
def test_verify__honest_output__accepted(n):
    w = get_workload("nbody-step")
    inputs = cloud(n, 100 + n)
    verdict = w.verify(inputs, w.run(inputs, device="cpu"), np.random.default_rng(n))
    assert verdict.accepted, verdict.reason
