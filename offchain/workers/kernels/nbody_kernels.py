"""Gravitational n-body kernels (G = 1, Plummer softening): Numba CPU and numba.cuda.

One step is a kick then a drift: ``v' = v + dt a(x)``, ``x' = x + dt v'``, with
``a_i = sum_j m_j (x_j - x_i) / (|x_j - x_i|^2 + eps2)^(3/2)`` (the j = i term is zero).
"""

import math

import numba
import numpy as np
from numba import cuda, njit, prange

CUDA_BLOCK = 128


@njit(parallel=True, cache=True)
def accelerations(pos, mass, eps2):  # pragma: no cover - compiled
    """Return the acceleration of every body, shape (n, 3)."""
    n = pos.shape[0]
    acc = np.empty((n, 3))
    for i in prange(n):
        xi, yi, zi = pos[i, 0], pos[i, 1], pos[i, 2]
        ax = ay = az = 0.0
        for j in range(n):
            dx = pos[j, 0] - xi
            dy = pos[j, 1] - yi
            dz = pos[j, 2] - zi
            r2 = dx * dx + dy * dy + dz * dz + eps2
            w = mass[j] / (r2 * math.sqrt(r2))
            ax += w * dx
            ay += w * dy
            az += w * dz
        acc[i, 0], acc[i, 1], acc[i, 2] = ax, ay, az
    return acc


# Serial: a verifier samples a handful of rows, too few to repay a parallel launch.
@njit(cache=True)
def accelerations_of(pos, mass, eps2, rows):  # pragma: no cover - compiled
    """Return the accelerations of ``rows`` and, per row, the sum of |term| (error scale)."""
    n = pos.shape[0]
    s = rows.shape[0]
    acc = np.empty((s, 3))
    size = np.empty(s)
    for q in range(s):
        i = rows[q]
        xi, yi, zi = pos[i, 0], pos[i, 1], pos[i, 2]
        ax = ay = az = total = 0.0
        for j in range(n):
            dx = pos[j, 0] - xi
            dy = pos[j, 1] - yi
            dz = pos[j, 2] - zi
            r2 = dx * dx + dy * dy + dz * dz + eps2
            w = mass[j] / (r2 * math.sqrt(r2))
            ax += w * dx
            ay += w * dy
            az += w * dz
            total += w * math.sqrt(dx * dx + dy * dy + dz * dz)
        acc[q, 0], acc[q, 1], acc[q, 2] = ax, ay, az
        size[q] = total
    return acc, size


def step_cpu(pos: np.ndarray, vel: np.ndarray, mass: np.ndarray, dt: float, eps2: float):
    """Return (positions, velocities) after one kick-drift step, on the CPU."""
    new_vel = vel + dt * accelerations(pos, mass, eps2)
    return pos + dt * new_vel, new_vel


@cuda.jit(cache=False)
def _accel_cuda_kernel(pos, mass, eps2, acc):  # pragma: no cover - needs a GPU or the simulator
    """One thread per body; bodies are staged through shared memory in blocks."""
    sx = cuda.shared.array(CUDA_BLOCK, dtype=numba.float64)
    sy = cuda.shared.array(CUDA_BLOCK, dtype=numba.float64)
    sz = cuda.shared.array(CUDA_BLOCK, dtype=numba.float64)
    sm = cuda.shared.array(CUDA_BLOCK, dtype=numba.float64)
    n = pos.shape[0]
    i = cuda.grid(1)
    t = cuda.threadIdx.x
    xi = pos[i, 0] if i < n else 0.0
    yi = pos[i, 1] if i < n else 0.0
    zi = pos[i, 2] if i < n else 0.0
    ax = 0.0
    ay = 0.0
    az = 0.0
    for base in range(0, n, CUDA_BLOCK):
        j = base + t
        if j < n:
            sx[t] = pos[j, 0]
            sy[t] = pos[j, 1]
            sz[t] = pos[j, 2]
            sm[t] = mass[j]
        else:
            sx[t] = 0.0
            sy[t] = 0.0
            sz[t] = 0.0
            sm[t] = 0.0
        cuda.syncthreads()
        for q in range(CUDA_BLOCK):
            dx = sx[q] - xi
            dy = sy[q] - yi
            dz = sz[q] - zi
            r2 = dx * dx + dy * dy + dz * dz + eps2
            w = sm[q] / (r2 * math.sqrt(r2))
            ax += w * dx
            ay += w * dy
            az += w * dz
        cuda.syncthreads()
    if i < n:
        acc[i, 0] = ax
        acc[i, 1] = ay
        acc[i, 2] = az


def step_cuda(pos: np.ndarray, vel: np.ndarray, mass: np.ndarray, dt: float, eps2: float):
    """Return (positions, velocities) after one step, accelerations computed on the GPU."""
    n = pos.shape[0]
    d_pos = cuda.to_device(np.ascontiguousarray(pos))
    d_mass = cuda.to_device(np.ascontiguousarray(mass))
    d_acc = cuda.device_array((n, 3), dtype=np.float64)
    blocks = (n + CUDA_BLOCK - 1) // CUDA_BLOCK
    _accel_cuda_kernel[blocks, CUDA_BLOCK](d_pos, d_mass, eps2, d_acc)
    new_vel = vel + dt * d_acc.copy_to_host()
    return pos + dt * new_vel, new_vel
