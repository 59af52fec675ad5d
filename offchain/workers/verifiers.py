"""Verifiers that cost a small fraction of the work, with their stated catch probabilities.

- ``freivalds_mod``: exact products modulo a prime; any wrong output passes one trial with
  probability at most 1/p (Schwartz-Zippel), so ``t`` trials catch it with >= 1 - p**-t.
- ``freivalds_f32``: float32 products; rejects a row whose residual exceeds the rigorous
  rounding bound ``tau_i`` (docs/workloads.md derives it), so a wrong element larger than
  ``2 tau_i`` is always caught, and any row error with an element ``d > 2 tau_i`` is caught
  with probability at least ``1 - min(1/2, 2 tau_i / |d|)**t``.
- ``nbody_check``: the drift of every body and the total momentum against their rounding
  bounds (an error above the bound is always caught), then the accelerations of ``s``
  sampled bodies recomputed (caught with ``1 - C(n-q, s) / C(n, s)`` for ``q`` wrong bodies).
- ``sampled_rows`` / ``rows_agree``: re-execution of a sampled set of rows with a tolerance;
  ``q`` wrong rows out of ``n`` with ``s`` sampled are caught with ``1 - C(n-q, s) / C(n, s)``.
"""

import math

import numpy as np
from numba import njit, prange

from offchain.workers.errors import InvalidInput
from offchain.workers.kernels.modp import P, matvecs_mod_checked
from offchain.workers.kernels.nbody import accelerations_of
from offchain.workers.verdict import Verdict

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


def freivalds_mod(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    rng: np.random.Generator,
    p: int = P,
    trials: int = MOD_TRIALS,
) -> Verdict:
    """Check ``c == a @ b mod p`` with ``trials`` random vectors: one pass over each matrix.

    The passes also count entries not below ``p``: inputs not reduced modulo ``p`` raise
    ``InvalidInput`` (the request was invalid), an output not reduced is rejected.
    """
    r = rng.integers(0, p, size=(trials, b.shape[1]), dtype=np.int64)
    br, b_over = matvecs_mod_checked(b, r, p)
    abr, a_over = matvecs_mod_checked(a, br, p)
    if a_over or b_over:
        raise InvalidInput(f"inputs must lie in [0, {p})")
    cr, c_over = matvecs_mod_checked(c, r, p)
    if c_over:
        return Verdict(False, f"{c_over} entries are not reduced modulo {p}")
    bad = np.nonzero((abr != cr).any(axis=0))[0]
    if bad.size:
        return Verdict(False, f"Freivalds mismatch in {bad.size} rows, first row {int(bad[0])}")
    return Verdict(True, f"Freivalds: {trials} trials over GF({p}) agree")


@njit(parallel=True, cache=True, fastmath=_FAST)
def _pass_rows(mat, vecs, weights):  # pragma: no cover - compiled
    """Return ``vecs @ mat.T`` (t, m) and ``|mat| weights`` (m,), in one pass over ``mat``."""
    m, k = mat.shape
    t = vecs.shape[0]
    out = np.empty((t, m))
    outa = np.empty(m)
    for i in prange(m):
        row = mat[i]
        total = 0.0
        for l in range(k):  # noqa: E741
            total += abs(np.float64(row[l])) * weights[l]
        outa[i] = total
        for s in range(t):
            vec = vecs[s]
            acc = 0.0
            for l in range(k):  # noqa: E741
                acc += np.float64(row[l]) * vec[l]
            out[s, i] = acc
    return out, outa


def f32_residuals(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, r: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the residuals ``|c r - a (b r)|`` (t, m) and the row bounds ``tau`` (m,).

    Raises ``InvalidInput`` when ``a`` or ``b`` holds a NaN or an infinity: the weighted sums of
    the passes are then not finite, so the verifier needs no separate validation pass.
    """
    m, k = a.shape
    n = b.shape[1]
    twos = np.full(n, 2.0)
    y, ya = _pass_rows(b, r, twos)
    z, za = _pass_rows(a, y, ya)
    if not (np.isfinite(ya).all() and np.isfinite(za).all()):
        raise InvalidInput("a, b: values must be finite")
    w, wa = _pass_rows(c, r, twos)
    g64 = gamma(n + k + 2, U64)
    tau = gamma(k + 1, U32) * za * (1 + 4 * g64) + 2 * g64 * (za + wa)
    tau += 2.0 * n * (k + 1) * 2.0**-149  # float32 underflow, absolute
    return np.abs(w - z), tau


def freivalds_f32(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    rng: np.random.Generator,
    trials: int = F32_TRIALS,
) -> Verdict:
    """Check a float32 product against its rounding bound with ``trials`` random vectors."""
    signs = rng.integers(0, 2, size=(trials, b.shape[1])) * 2 - 1
    r = signs * rng.uniform(1.0, 2.0, size=(trials, b.shape[1]))
    residual, tau = f32_residuals(a, b, c, r)
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
    return Verdict(True, f"Freivalds: {trials} trials within the float32 rounding bound")


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
