"""Verifiers that cost a small fraction of the work, with their stated catch probabilities.

- ``freivalds_mod``: exact products modulo a prime; any wrong output passes one trial with
  probability at most 1/p (Schwartz-Zippel), so ``t`` trials catch it with >= 1 - p**-t.
- ``freivalds_f32``: float32 products; rejects a row whose residual exceeds the rigorous
  rounding bound ``tau_i`` (docs/workloads.md derives it), so a wrong element larger than
  ``2 tau_i`` is always caught, and any row error with an element ``d > 2 tau_i`` is caught
  with probability at least ``1 - min(1/2, 2 tau_i / |d|)**t``.
- Both products split as ``prepare_*`` (when the task is issued: the secret ``r`` and
  ``A(Br)``, two passes over the inputs) and ``check_*`` (when the result arrives: one pass over
  ``C``); ``freivalds_*`` is the one-shot composition, with the same verdicts.
- ``nbody_check``: the drift of every body and the total momentum against their rounding
  bounds (an error above the bound is always caught), then the accelerations of ``s``
  sampled bodies recomputed (caught with ``1 - C(n-q, s) / C(n, s)`` for ``q`` wrong bodies).
- ``sampled_rows`` / ``rows_agree``: re-execution of a sampled set of rows with a tolerance;
  ``q`` wrong rows out of ``n`` with ``s`` sampled are caught with ``1 - C(n-q, s) / C(n, s)``.
"""

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from offchain.workers.kernels.modp import P, matvecs_mod_checked
from offchain.workers.kernels.nbody_kernels import accelerations_of
from offchain.workers.verdict import Verdict
from offchain.workers.workload_errors import InvalidInput

U32 = 2.0**-24  # unit roundoff of float32
U64 = 2.0**-53  # unit roundoff of float64
F32_TRIALS = 2
MOD_TRIALS = 2
NBODY_SAMPLE = 8
_FAST = {"reassoc", "contract"}


def gamma(count: int, unit: float) -> float:
    """Return Higham's gamma_count = count*u / (1 - count*u), the bound of a length-count sum."""
    if count * unit >= 1:
        raise ValueError("sum too long for a rounding bound")
    return count * unit / (1 - count * unit)


def stated_catch_mod(p: int = P, trials: int = MOD_TRIALS) -> float:
    """Return the least chance that ``freivalds_mod`` rejects any wrong product."""
    return 1.0 - float(p) ** -trials


def _check_trials(trials: int) -> None:
    if trials < 1:
        raise ValueError("at least one trial")


@dataclass(frozen=True)
class ModCheck:
    """The issuer's secret for one product modulo ``p``: the vectors ``r`` and ``A(Br) mod p``.

    Made by ``prepare_mod`` when the task is issued (two passes, over B and A) and used once by
    ``check_mod`` when the result arrives (one pass, over C). ``r`` must stay secret until then.
    """

    r: np.ndarray  # (t, n) float64, entries in [0, p)
    abr: np.ndarray  # (t, m) int64
    p: int


def prepare_mod(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, p: int = P, trials: int = MOD_TRIALS
) -> ModCheck:
    """Draw ``trials`` secret vectors and compute ``A(Br) mod p``; inputs not reduced raise."""
    _check_trials(trials)
    r = rng.integers(0, p, size=(trials, b.shape[1])).astype(np.float64)
    br, b_over = matvecs_mod_checked(b, r, p)
    abr, a_over = matvecs_mod_checked(a, br, p)
    if a_over or b_over:
        raise InvalidInput(f"inputs must lie in [0, {p})")
    return ModCheck(r, abr, p)


def check_mod(prepared: ModCheck, c: np.ndarray) -> Verdict:
    """Compare ``C r mod p`` with the prepared ``A(Br)``: one pass over ``c``."""
    t, n = prepared.r.shape
    if c.ndim != 2 or c.shape != (prepared.abr.shape[1], n):
        return Verdict(False, f"output of shape {c.shape} does not fit the prepared check")
    cr, c_over = matvecs_mod_checked(c, prepared.r, prepared.p)
    if c_over:
        return Verdict(False, f"{c_over} rows hold entries not reduced modulo {prepared.p}")
    bad = np.nonzero((prepared.abr != cr).any(axis=0))[0]
    if bad.size:
        return Verdict(False, f"Freivalds mismatch in {bad.size} rows, first row {int(bad[0])}")
    return Verdict(True, f"Freivalds: {t} trials over GF({prepared.p}) agree")


def freivalds_mod(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    rng: np.random.Generator,
    p: int = P,
    trials: int = MOD_TRIALS,
) -> Verdict:
    """Check ``c == a @ b mod p`` with ``trials`` random vectors: one pass over each matrix.

    The passes also look for entries not below ``p``: inputs not reduced modulo ``p`` raise
    ``InvalidInput`` (the request was invalid), an output not reduced is rejected.
    """
    return check_mod(prepare_mod(a, b, rng, p, trials), c)


@njit(parallel=True, cache=True, fastmath=_FAST)
def _pass_rows(mat, vecs, weights):  # pragma: no cover - compiled
    """Return ``vecs @ mat.T`` (t, m) and ``|mat| weights`` (m,), in one pass over ``mat``.

    An empty ``weights`` means all ones (``|mat| 1``, the row sums of magnitudes). Each row is
    read once per pair of vectors, with the magnitude sum fused into the first pair's loop.
    """
    m, k = mat.shape
    t = vecs.shape[0]
    weighted = weights.shape[0] > 0
    out = np.empty((t, m))
    outa = np.empty(m)
    for i in prange(m):
        row = mat[i]
        for s in range(0, t, 2):
            v0 = vecs[s]
            v1 = vecs[min(s + 1, t - 1)]
            total = 0.0
            acc0 = 0.0
            acc1 = 0.0
            if weighted:
                for l in range(k):  # noqa: E741
                    x = np.float64(row[l])
                    total += abs(x) * weights[l]
                    acc0 += x * v0[l]
                    acc1 += x * v1[l]
            else:
                for l in range(k):  # noqa: E741
                    x = np.float64(row[l])
                    total += abs(x)
                    acc0 += x * v0[l]
                    acc1 += x * v1[l]
            if s == 0:
                outa[i] = total
            out[s, i] = acc0
            if s + 1 < t:
                out[s + 1, i] = acc1
    return out, outa


_ONES = np.empty(0)
R_MAX = 2.0  # |r_j| < 2


@dataclass(frozen=True)
class F32Check:
    """The issuer's secret for one float32 product: ``r``, ``A(Br)`` and ``|A|(2|B|1)``.

    Made by ``prepare_f32`` when the task is issued (two passes, over B and A) and used once by
    ``check_f32`` when the result arrives (one pass, over C). ``r`` must stay secret until then.
    """

    r: np.ndarray  # (t, n) float64, r_j = +-U[1, 2)
    z: np.ndarray  # (t, m) float64, A(Br)
    za: np.ndarray  # (m,) float64, |A|(2|B|1)
    k: int


def _prepare_f32_with(a: np.ndarray, b: np.ndarray, r: np.ndarray) -> F32Check:
    """Return the prepared check for given vectors ``r`` (shape (t, n), |r_j| <= 2)."""
    r = np.ascontiguousarray(r, dtype=np.float64)
    y, ya = _pass_rows(b, r, _ONES)
    ya *= R_MAX  # |B| 2, exact scaling
    z, za = _pass_rows(a, y, ya)
    if not (np.isfinite(ya).all() and np.isfinite(za).all()):
        raise InvalidInput("a, b: values must be finite")
    return F32Check(r, z, za, a.shape[1])


def prepare_f32(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, trials: int = F32_TRIALS
) -> F32Check:
    """Draw ``trials`` secret vectors ``r_j = +-U[1, 2)`` and compute ``A(Br)`` in float64.

    Raises ``InvalidInput`` when ``a`` or ``b`` holds a NaN or an infinity: the weighted sums of
    the passes are then not finite, so the verifier needs no separate validation pass.
    """
    _check_trials(trials)
    signs = rng.integers(0, 2, size=(trials, b.shape[1])) * 2 - 1
    return _prepare_f32_with(a, b, signs * rng.uniform(1.0, 2.0, size=(trials, b.shape[1])))


def f32_check_residuals(prepared: F32Check, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the residuals ``|c r - a (b r)|`` (t, m) and the row bounds ``tau`` (m,)."""
    n, k = prepared.r.shape[1], prepared.k
    w, wa = _pass_rows(c, prepared.r, _ONES)
    wa *= R_MAX  # |C| 2, exact scaling
    za = prepared.za
    g64 = gamma(n + k + 2, U64)
    tau = gamma(k + 1, U32) * za * (1 + 4 * g64) + 2 * g64 * (za + wa)
    tau += 2.0 * n * (k + 1) * 2.0**-149  # float32 underflow, absolute
    return np.abs(w - prepared.z), tau


def f32_residuals(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, r: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the residuals ``|c r - a (b r)|`` (t, m) and the row bounds ``tau`` (m,)."""
    return f32_check_residuals(_prepare_f32_with(a, b, r), c)


def check_f32(prepared: F32Check, c: np.ndarray) -> Verdict:
    """Check a float32 result against the prepared ``A(Br)`` and its rounding bound."""
    t, n = prepared.r.shape
    if c.ndim != 2 or c.shape != (prepared.z.shape[1], n):
        return Verdict(False, f"output of shape {c.shape} does not fit the prepared check")
    residual, tau = f32_check_residuals(prepared, c)
    if not np.isfinite(residual).all():
        return Verdict(False, "output has a NaN or an infinity")
    over = residual > tau[None, :]
    if over.any():
        s, i = np.argwhere(over)[0]
        return Verdict(
            False,
            f"Freivalds residual {residual[s, i]:.3e} exceeds the float32 bound "
            f"{tau[i]:.3e} in row {int(i)}",
        )
    return Verdict(True, f"Freivalds: {t} trials within the float32 rounding bound")


def freivalds_f32(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    rng: np.random.Generator,
    trials: int = F32_TRIALS,
) -> Verdict:
    """Check a float32 product against its rounding bound with ``trials`` random vectors."""
    return check_f32(prepare_f32(a, b, rng, trials), c)


def stated_catch_f32(tau: float, error: float, trials: int = F32_TRIALS) -> float:
    """Return the least chance of rejecting a row whose largest wrong element is ``error``."""
    if abs(error) <= 2 * tau:
        return 0.0
    return 1.0 - min(0.5, 2 * tau / abs(error)) ** trials


def stated_catch_sampled(total: int, wrong: int, sample: int) -> float:
    """Return the chance that ``sample`` distinct rows of ``total`` include one of ``wrong``."""
    sample = min(sample, total)
    return 1.0 - math.comb(total - wrong, sample) / math.comb(total, sample)


def sampled_rows(total: int, sample: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``min(sample, total)`` distinct row indices in increasing order."""
    return np.sort(rng.choice(total, size=min(sample, total), replace=False))


def rows_agree(
    expected: np.ndarray, got: np.ndarray, rtol: float, atol: float
) -> tuple[np.ndarray, float]:
    """Return the positions of rows outside the tolerance, and the largest scaled error."""
    exp2 = expected.reshape(len(expected), -1).astype(np.float64)
    got2 = got.reshape(len(got), -1).astype(np.float64)
    scale = np.maximum(1.0, np.abs(exp2).max(axis=1, initial=0.0))[:, None]
    allowed = rtol * np.abs(exp2) + atol * scale
    excess = np.abs(got2 - exp2) / allowed
    worst = excess.max(axis=1, initial=0.0)
    return np.nonzero(~(worst <= 1.0))[0], float(np.nan_to_num(worst.max(initial=0.0), nan=np.inf))


def nbody_momentum_bound(
    mass: np.ndarray, vel: np.ndarray, new_vel: np.ndarray, dt: float, eps2: float
) -> float:
    """Return the most an honest step may change any component of the total momentum."""
    n = len(mass)
    total = float(mass.sum())
    # |m_j d / (|d|^2 + eps2)^1.5| <= m_j * 2 / (3 sqrt(3) eps2), so sum_j |term_ij| <= M K.
    peak = 2.0 / (3.0 * math.sqrt(3.0) * eps2)
    force_error = dt * gamma(n + 10, U64) * total * total * peak
    dv = np.abs(new_vel - vel)
    rounding = U64 * float(mass @ np.abs(new_vel).sum(axis=1))
    summing = 2 * gamma(n + 2, U64) * float(mass @ dv.sum(axis=1))
    return 2.0 * (force_error + rounding + summing)


def nbody_check(
    inputs: dict, outputs: dict, eps2: float, rng: np.random.Generator, sample: int
) -> Verdict:
    """Check one n-body step by its drift, its momentum and ``sample`` recomputed bodies."""
    pos, vel, mass = inputs["pos"], inputs["vel"], inputs["mass"]
    dt = float(inputs["dt"])
    new_pos, new_vel = outputs["pos"], outputs["vel"]
    if not (np.isfinite(new_pos).all() and np.isfinite(new_vel).all()):
        return Verdict(False, "output has a NaN or an infinity")
    drift_error = np.abs(new_pos - (pos + dt * new_vel))
    drift_bound = 4 * U64 * (np.abs(pos) + np.abs(dt * new_vel))
    if (drift_error > drift_bound).any():
        body = int(np.argwhere(drift_error > drift_bound)[0][0])
        return Verdict(False, f"body {body}: position is not x + dt * v'")
    momentum = mass @ (new_vel - vel)
    bound = nbody_momentum_bound(mass, vel, new_vel, dt, eps2)
    if (np.abs(momentum) > bound).any():
        return Verdict(
            False, f"total momentum changed by {np.abs(momentum).max():.3e} > {bound:.3e}"
        )
    rows = sampled_rows(len(mass), sample, rng)
    acc, size = accelerations_of(pos, mass, eps2, rows.astype(np.int64))
    error = np.abs(new_vel[rows] - vel[rows] - dt * acc)
    allowed = 4 * dt * gamma(len(mass) + 10, U64) * size[:, None] + 4 * U64 * (
        np.abs(vel[rows]) + np.abs(new_vel[rows])
    )
    if (error > allowed).any():
        body = int(rows[np.argwhere(error > allowed)[0][0]])
        return Verdict(False, f"body {body}: velocity disagrees with the recomputed force")
    return Verdict(True, f"drift and momentum hold; {rows.size} sampled bodies agree")
