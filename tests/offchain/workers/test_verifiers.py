"""Each verifier rejects corrupted outputs, and its observed catch rate matches the stated one."""

import math

import numpy as np
import pytest

from offchain.workers.kernels.modp import P, matmul_mod
from offchain.workers.verifiers import (
    _pass_rows,
    check_f32,
    check_mod,
    f32_residuals,
    freivalds_mod,
    prepare_f32,
    prepare_mod,
    stated_catch_f32,
    stated_catch_mod,
    stated_catch_sampled,
)
from offchain.workers.workload_errors import InvalidInput
from offchain.workers.workloads import get_workload
from offchain.workers.workloads.base import Prepared
from offchain.workers.workloads.mlp import MlpInfer
from offchain.workers.workloads.nbody import NBodyStep


def within(observed: float, stated: float, trials: int, sigmas: float = 4.5) -> bool:
    """Return whether an observed rate is within ``sigmas`` binomial deviations of ``stated``."""
    spread = math.sqrt(max(stated * (1 - stated), 1e-12) / trials)
    return abs(observed - stated) <= sigmas * spread + 1e-9


def modp_inputs(rng, m=24, k=20, n=18, p=P):
    a = rng.integers(0, p, (m, k), dtype=np.uint32)
    b = rng.integers(0, p, (k, n), dtype=np.uint32)
    return a, b, matmul_mod(a, b, p)


def f32_inputs(rng, m=40, k=64, n=48):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    return a, b, (a @ b).astype(np.float32)


# ---------------------------------------------------------------- matmul-modp (Freivalds, exact)


def test_modp__corruptions__always_rejected():
    rng = np.random.default_rng(0)
    w = get_workload("matmul-modp")
    a, b, c = modp_inputs(rng)
    inputs = {"a": a, "b": b}
    assert w.verify(inputs, {"c": c}, rng).accepted
    trials = 200
    for corrupt in ("element", "row", "scaled", "unreduced"):
        caught = 0
        for _ in range(trials):
            bad = c.astype(np.int64)
            i, j = rng.integers(0, c.shape[0]), rng.integers(0, c.shape[1])
            if corrupt == "element":
                bad[i, j] = (bad[i, j] + rng.integers(1, P)) % P
            elif corrupt == "row":
                bad[i] = rng.integers(0, P, c.shape[1])
            elif corrupt == "scaled":
                bad = (bad * 2) % P
            else:
                bad[i, j] += P
            caught += not w.verify(inputs, {"c": bad.astype(np.uint32)}, rng).accepted
        assert caught / trials == pytest.approx(stated_catch_mod(), abs=1e-9), corrupt


def test_modp__inputs_not_reduced__refused_by_the_verifier():
    rng = np.random.default_rng(10)
    a, b, c = modp_inputs(rng)
    a[2, 3] = P
    with pytest.raises(InvalidInput, match="lie in"):
        get_workload("matmul-modp").verify({"a": a, "b": b}, {"c": c}, rng)


def test_modp__small_field__one_wrong_element_caught_at_rate_1_minus_1_over_p():
    # Over GF(7) one trial misses a single wrong element exactly when r_j = 0: rate 6/7.
    p, trials = 7, 1400
    rng = np.random.default_rng(1)
    a, b, c = modp_inputs(rng, 6, 5, 4, p)
    caught = 0
    for _ in range(trials):
        bad = c.copy()
        i, j = rng.integers(0, 6), rng.integers(0, 4)
        bad[i, j] = (bad[i, j] + rng.integers(1, p)) % p
        caught += not freivalds_mod(a, b, bad, rng, p=p, trials=1).accepted
    assert within(caught / trials, stated_catch_mod(p, 1), trials)
    assert freivalds_mod(a, b, c, rng, p=p, trials=1).accepted


# ------------------------------------------------------------- prepare on issue, check on receipt


@pytest.mark.parametrize("wid", ["matmul-f32", "matmul-modp"])
def test_prepare_then_check__same_verdicts_as_verify(wid):
    rng = np.random.default_rng(20)
    w = get_workload(wid)
    a, b, c = f32_inputs(rng) if wid == "matmul-f32" else modp_inputs(rng)
    inputs = {"a": a, "b": b}
    assert w.check(w.prepare(inputs, rng), {"c": c}).accepted
    bad = c.copy()
    bad[3, 5] = bad[3, 5] * 3 + 7 if wid == "matmul-f32" else (bad[3, 5] + 1) % P
    verdict = w.check(w.prepare(inputs, rng), {"c": bad})
    assert not verdict.accepted and "Freivalds" in verdict.reason
    for outputs in ({"c": bad}, {"c": c * 2}):
        assert not w.check(w.prepare(inputs, rng), outputs).accepted
        assert not w.verify(inputs, outputs, rng).accepted
    verdict = w.check(w.prepare(inputs, rng), {"c": c[:-1]})
    assert not verdict.accepted and "malformed output" in verdict.reason


def test_prepare_then_check__low_level_functions_refuse_a_wrong_shape():
    rng = np.random.default_rng(21)
    a, b, c = f32_inputs(rng)
    assert check_f32(prepare_f32(a, b, rng), c).accepted
    assert not check_f32(prepare_f32(a, b, rng), c.T).accepted
    a, b, c = modp_inputs(rng)
    assert check_mod(prepare_mod(a, b, rng), c).accepted
    assert not check_mod(prepare_mod(a, b, rng), c[:, :-1]).accepted
    with pytest.raises(ValueError):
        prepare_mod(a, b, rng, trials=0)


def test_prepare__invalid_inputs__refused_when_the_task_is_issued():
    rng = np.random.default_rng(22)
    a, b, _ = f32_inputs(rng)
    a[1, 2] = np.nan
    with pytest.raises(InvalidInput):
        get_workload("matmul-f32").prepare({"a": a, "b": b}, rng)
    a, b, _ = modp_inputs(rng)
    b[0, 0] = P
    with pytest.raises(InvalidInput):
        get_workload("matmul-modp").prepare({"a": a, "b": b}, rng)


def test_check__state_prepared_for_another_workload__refused():
    rng = np.random.default_rng(23)
    a, b, c = f32_inputs(rng)
    prepared = get_workload("matmul-f32").prepare({"a": a, "b": b}, rng)
    assert isinstance(prepared, Prepared) and prepared.sizes == {"m": 40, "k": 64, "n": 48}
    with pytest.raises(ValueError, match="prepared for matmul-f32"):
        get_workload("matmul-modp").check(prepared, {"c": c})


def test_prepare_then_check__one_shot_workloads_too():
    rng = np.random.default_rng(24)
    w = get_workload("mlp-infer")
    inputs = {"x": rng.standard_normal((32, 64)).astype(np.float32)}
    outputs = w.run(inputs, device="cpu")
    assert w.check(w.prepare(inputs, rng), outputs).accepted
    assert not w.check(w.prepare(inputs, rng), {"y": outputs["y"] * 2}).accepted


@pytest.mark.parametrize("trials", [1, 2, 3])
def test_pass_rows__any_trial_count__equals_numpy(trials):
    rng = np.random.default_rng(trials)
    mat = rng.standard_normal((7, 13)).astype(np.float32)
    vecs = rng.standard_normal((trials, 13))
    weights = rng.uniform(0, 3, 13)
    out, sums = _pass_rows(mat, vecs, weights)
    m64 = mat.astype(np.float64)
    assert np.allclose(out, vecs @ m64.T, rtol=1e-12)
    assert np.allclose(sums, np.abs(m64) @ weights, rtol=1e-12)
    _, plain = _pass_rows(mat, vecs, np.empty(0))
    assert np.allclose(plain, np.abs(m64).sum(axis=1), rtol=1e-12)


# ---------------------------------------------------------------- matmul-f32 (Freivalds + bound)


def test_f32__honest_products__accepted_at_every_shape():
    rng = np.random.default_rng(2)
    w = get_workload("matmul-f32")
    for m, k, n in [(1, 1, 1), (5, 300, 2), (64, 64, 64), (100, 7, 130)]:
        a, b, _ = f32_inputs(rng, m, k, n)
        inputs = {"a": a, "b": b}
        for _ in range(5):
            assert w.verify(inputs, w.run(inputs, device="cpu"), rng).accepted


def test_f32__corruptions_above_the_bound__rejected_as_stated():
    rng = np.random.default_rng(3)
    w = get_workload("matmul-f32")
    a, b, c = f32_inputs(rng)
    _, tau = f32_residuals(a, b, c, np.full((1, b.shape[1]), 2.0))
    inputs = {"a": a, "b": b}
    trials = 100
    for corrupt in ("element", "row", "scaled"):
        caught, stated = 0, 1.0
        for _ in range(trials):
            bad = c.copy()
            i, j = rng.integers(0, c.shape[0]), rng.integers(0, c.shape[1])
            if corrupt == "element":
                delta = 2.5 * tau[i] * rng.choice([-1, 1])
                bad[i, j] += delta
                stated = stated_catch_f32(tau[i], delta)
            elif corrupt == "row":
                bad[i] = rng.standard_normal(c.shape[1]) * 8
            else:
                bad *= 1.5
            caught += not w.verify(inputs, {"c": bad}, rng).accepted
        assert caught / trials >= stated - 1e-9, corrupt
        assert caught == trials, corrupt


def test_f32__two_cancelling_errors__miss_rate_below_stated_bound():
    # d and -d in one row: a trial misses only when both signs agree and |u1 - u2| is small.
    rng = np.random.default_rng(4)
    a, b, c = f32_inputs(rng)
    _, tau = f32_residuals(a, b, c, np.full((1, b.shape[1]), 2.0))
    w, trials, caught = get_workload("matmul-f32"), 400, 0
    for _ in range(trials):
        i = rng.integers(0, c.shape[0])
        j1, j2 = rng.choice(c.shape[1], 2, replace=False)
        bad = c.copy()
        bad[i, j1] += 4 * tau[i]
        bad[i, j2] -= 4 * tau[i]
        caught += not w.verify({"a": a, "b": b}, {"c": bad}, rng).accepted
    stated = stated_catch_f32(tau[0], 4 * tau[0])
    assert stated == pytest.approx(0.75)
    assert caught / trials >= stated - 4.5 * math.sqrt(stated * (1 - stated) / trials)


def test_f32__errors_below_the_bound__not_claimed():
    assert stated_catch_f32(1.0, 1.9) == 0.0
    assert stated_catch_f32(1.0, 100.0) == pytest.approx(1 - 0.02**2)


@pytest.mark.parametrize(
    ("value", "message"), [(np.inf, "finite"), (-np.inf, "finite"), (np.nan, "finite")]
)
def test_f32__bad_inputs__refused_by_the_verifier(value, message):
    rng = np.random.default_rng(11)
    a, b, c = f32_inputs(rng)
    a[1, 2] = value
    with pytest.raises(InvalidInput, match=message):
        get_workload("matmul-f32").verify({"a": a, "b": b}, {"c": c}, rng)


def test_f32__non_finite_output__rejected():
    rng = np.random.default_rng(5)
    a, b, c = f32_inputs(rng)
    c[0, 0] = np.nan
    verdict = get_workload("matmul-f32").verify({"a": a, "b": b}, {"c": c}, rng)
    assert not verdict.accepted and "NaN" in verdict.reason


# ---------------------------------------------------------------- inference (sampled re-execution)


@pytest.mark.parametrize("wid", ["mlp-infer", "cnn-infer"])
def test_inference__corruptions__rejected(wid):
    rng = np.random.default_rng(6)
    w = get_workload(wid)
    shape = (64,) if wid == "mlp-infer" else (1, 28, 28)
    x = rng.standard_normal((32, *shape)).astype(np.float32)
    y = w.run({"x": x}, device="cpu")["y"]
    assert w.verify({"x": x}, {"y": y}, rng).accepted
    scaled = y * 1.01
    assert not w.verify({"x": x}, {"y": scaled}, rng).accepted
    every_row = y.copy()
    every_row[:, 3] += 0.05
    assert not w.verify({"x": x}, {"y": every_row}, rng).accepted
    nan = y.copy()
    nan[5, 5] = np.nan
    assert not w.verify({"x": x}, {"y": nan}, rng).accepted


@pytest.mark.parametrize(("wrong", "corrupt"), [(1, "element"), (6, "row")])
def test_inference__wrong_rows__caught_at_the_stated_rate(wrong, corrupt):
    rng = np.random.default_rng(7 + wrong)
    w = MlpInfer(sample_fraction=1 / 16, min_sample=2)
    batch, trials = 48, 500
    x = rng.standard_normal((batch, 64)).astype(np.float32)
    y = w.run({"x": x}, device="cpu")["y"]
    caught = 0
    for _ in range(trials):
        bad = y.copy()
        rows = rng.choice(batch, wrong, replace=False)
        if corrupt == "element":
            bad[rows[0], rng.integers(0, 10)] += 1.0
        else:
            bad[rows] = rng.standard_normal((wrong, 10))
        caught += not w.verify({"x": x}, {"y": bad}, rng).accepted
    stated = w.stated_catch(batch, wrong)
    assert stated == pytest.approx(stated_catch_sampled(batch, wrong, 3))
    assert within(caught / trials, stated, trials)


# ---------------------------------------------------------------- n-body (drift, momentum, sample)


def cloud(n, rng):
    return {
        "pos": rng.uniform(-1, 1, (n, 3)),
        "vel": rng.normal(0, 0.1, (n, 3)),
        "mass": rng.uniform(0.5, 1.5, n) / n,
        "dt": np.array(0.01),
    }


def test_nbody__corruptions__always_rejected():
    rng = np.random.default_rng(8)
    w = get_workload("nbody-step")
    inputs = cloud(64, rng)
    out = w.run(inputs, device="cpu")
    dt = float(inputs["dt"])
    for corrupt in ("velocity element", "position element", "row", "scaled", "scaled forces"):
        for _ in range(50):
            pos, vel = out["pos"].copy(), out["vel"].copy()
            i, c = rng.integers(0, 64), rng.integers(0, 3)
            if corrupt == "velocity element":
                vel[i, c] += 1e-6
                pos = inputs["pos"] + dt * vel
            elif corrupt == "position element":
                pos[i, c] += 1e-9
            elif corrupt == "row":
                vel[i] = rng.normal(0, 0.1, 3)
                pos[i] = rng.uniform(-1, 1, 3)
            elif corrupt == "scaled":
                pos, vel = pos * 1.001, vel * 1.001
            else:  # every force scaled: momentum and drift still hold, only the sample sees it
                vel = inputs["vel"] + 1.01 * (out["vel"] - inputs["vel"])
                pos = inputs["pos"] + dt * vel
            verdict = w.verify(inputs, {"pos": pos, "vel": vel}, rng)
            assert not verdict.accepted, corrupt


def test_nbody__momentum_preserving_pair__caught_at_the_stated_rate():
    rng = np.random.default_rng(9)
    n, trials = 64, 500
    w = NBodyStep(sample=8)
    inputs = cloud(n, rng)
    out = w.run(inputs, device="cpu")
    mass, dt = inputs["mass"], float(inputs["dt"])
    caught = 0
    for _ in range(trials):
        i, j = rng.choice(n, 2, replace=False)
        vel = out["vel"].copy()
        vel[i] += 1e-3 / mass[i]
        vel[j] -= 1e-3 / mass[j]
        pos = inputs["pos"] + dt * vel
        caught += not w.verify(inputs, {"pos": pos, "vel": vel}, rng).accepted
    stated = stated_catch_sampled(n, 2, 8)
    assert within(caught / trials, stated, trials)
