"""Exact integer matrix arithmetic modulo a prime: Numba kernels for CPU and CUDA.

Entries live in [0, P) with P = 1_048_573, the largest prime below 2**20. A product of two
entries is below 2**40, so a sum of up to 2**53 / (P - 1)**2 = 8192 of them is an integer below
2**53: float64 adds and fused multiply-adds on such values are exact in any order, which lets
the CPU path use float64 BLAS on blocks of at most ``exact_block(P)`` terms and reduce modulo P
in Numba. The CUDA path accumulates in int64 (exact up to 2**23 terms). Both give bit-identical
results on any hardware.
"""

import numba
import numpy as np
from numba import cuda, njit, prange

P = 1_048_573
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
CUDA_TILE = 16


def exact_block(p: int) -> int:
    """Return the most products of entries below ``p`` that a float64 sum holds exactly."""
    if not 2 <= p < 2**26:
        raise ValueError(f"modulus {p} outside [2, 2**26)")
    return max(1, 2**53 // max(1, (p - 1) ** 2))


@njit(parallel=True, cache=True)
def _fold_mod(partial, acc, p, first):  # pragma: no cover - compiled
    """Add ``partial`` (exact integers held as float64) into ``acc`` modulo ``p``."""
    m, n = partial.shape
    for i in prange(m):
        for j in range(n):
            v = np.int64(partial[i, j]) % p
            if first:
                acc[i, j] = v
            else:
                acc[i, j] = (acc[i, j] + v) % p


@njit(parallel=True, cache=True)
def _to_uint32(acc, out):  # pragma: no cover - compiled
    """Copy reduced int64 entries into the uint32 result."""
    m, n = acc.shape
    for i in prange(m):
        for j in range(n):
            out[i, j] = np.uint32(acc[i, j])


@njit(parallel=True, cache=True)
def _reduce_f64(partial, out, p):  # pragma: no cover - compiled
    """Write ``partial`` (exact integers as float64) modulo ``p`` into the uint32 ``out``."""
    m, n = partial.shape
    for i in prange(m):
        for j in range(n):
            out[i, j] = np.uint32(np.int64(partial[i, j]) % p)


def matmul_mod_blas(a: np.ndarray, b: np.ndarray, p: int = P) -> np.ndarray:
    """Return ``a @ b mod p`` through float64 BLAS on exact blocks, reduced in Numba."""
    m, k = a.shape
    n = b.shape[1]
    block = exact_block(p)
    out = np.empty((m, n), dtype=np.uint32)
    if k <= block:
        partial = np.matmul(a.astype(np.float64), b.astype(np.float64))
        _reduce_f64(partial, out, p)
        return out
    acc = np.empty((m, n), dtype=np.int64)
    for k0 in range(0, k, block):
        k1 = min(k, k0 + block)
        partial = np.matmul(a[:, k0:k1].astype(np.float64), b[k0:k1].astype(np.float64))
        _fold_mod(partial, acc, p, k0 == 0)
    _to_uint32(acc, out)
    return out


@njit(parallel=True, cache=True)
def _matmul_mod_tiled(a, bf, p, block):  # pragma: no cover - compiled
    """Return ``a @ bf mod p`` with a blocked kernel that reduces once per ``block`` terms."""
    m, k = a.shape
    n = bf.shape[1]
    ti, tk = 4, min(256, block)
    out = np.empty((m, n), dtype=np.uint32)
    tiles = (m + ti - 1) // ti
    for t in prange(tiles):
        i0 = t * ti
        rows = min(ti, m - i0)
        acc = np.zeros((ti, n), dtype=np.float64)
        red = np.zeros((ti, n), dtype=np.int64)
        since = 0
        for k0 in range(0, k, tk):
            k1 = min(k, k0 + tk)
            if since + (k1 - k0) > block:
                for r in range(rows):
                    for j in range(n):
                        red[r, j] = (red[r, j] + np.int64(acc[r, j])) % p
                        acc[r, j] = 0.0
                since = 0
            since += k1 - k0
            for kk in range(k0, k1):
                brow = bf[kk]
                if rows == ti:
                    a0 = np.float64(a[i0, kk])
                    a1 = np.float64(a[i0 + 1, kk])
                    a2 = np.float64(a[i0 + 2, kk])
                    a3 = np.float64(a[i0 + 3, kk])
                    for j in range(n):
                        bv = brow[j]
                        acc[0, j] += a0 * bv
                        acc[1, j] += a1 * bv
                        acc[2, j] += a2 * bv
                        acc[3, j] += a3 * bv
                else:
                    for r in range(rows):
                        av = np.float64(a[i0 + r, kk])
                        for j in range(n):
                            acc[r, j] += av * brow[j]
        for r in range(rows):
            for j in range(n):
                out[i0 + r, j] = np.uint32((red[r, j] + np.int64(acc[r, j])) % p)
    return out


def matmul_mod_numba(a: np.ndarray, b: np.ndarray, p: int = P) -> np.ndarray:
    """Return ``a @ b mod p`` with the blocked Numba kernel and delayed reduction."""
    return _matmul_mod_tiled(a, b.astype(np.float64), p, exact_block(p))


STRATEGIES = {"blas": matmul_mod_blas, "numba": matmul_mod_numba}
# Chosen from bench/results/workloads.json: float64 BLAS is the faster of the two here.
DEFAULT_STRATEGY = "blas"


def matmul_mod(a: np.ndarray, b: np.ndarray, p: int = P, strategy: str = DEFAULT_STRATEGY):
    """Return ``a @ b mod p`` (uint32) on the CPU with the named strategy."""
    return STRATEGIES[strategy](a, b, p)


# Reassociation is safe: every partial sum is a nonnegative integer below 2**53, so exact.
@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def _matvecs_mod(mat, vecs, p, block):  # pragma: no cover - compiled
    """Return ``vecs @ mat.T mod p`` and, per row, its largest entry.

    Each row is read once per pair of vectors; the largest entry is taken in the same loop, so
    the range check costs no extra pass. A row whose largest entry is ``p`` or more gives no
    exact product (its entries are read as int32 so that the conversion vectorizes).
    """
    r, c = mat.shape
    t = vecs.shape[0]
    out = np.empty((t, r), dtype=np.int64)
    top = np.zeros(r, dtype=np.int64)
    for i in prange(r):
        row = mat[i]
        for s in range(0, t, 2):
            v0 = vecs[s]
            v1 = vecs[min(s + 1, t - 1)]
            if c <= block:  # the common case, kept as one loop so that it vectorizes
                acc0 = 0.0
                acc1 = 0.0
                big = np.uint32(0)
                for j in range(c):
                    e = row[j]
                    big = max(big, e)
                    x = np.float64(np.int32(e))
                    acc0 += x * v0[j]
                    acc1 += x * v1[j]
                largest = np.int64(big)
                total0 = np.int64(acc0) % p
                total1 = np.int64(acc1) % p
            else:
                total0 = np.int64(0)
                total1 = np.int64(0)
                largest = np.int64(0)
                for j0 in range(0, c, block):
                    acc0 = 0.0
                    acc1 = 0.0
                    for j in range(j0, min(c, j0 + block)):
                        largest = max(largest, np.int64(row[j]))
                        x = np.float64(np.int32(row[j]))
                        acc0 += x * v0[j]
                        acc1 += x * v1[j]
                    total0 = (total0 + np.int64(acc0)) % p
                    total1 = (total1 + np.int64(acc1)) % p
            if s == 0:
                top[i] = largest
            out[s, i] = total0
            if s + 1 < t:
                out[s + 1, i] = total1
    return out, top


def matvecs_mod_checked(mat: np.ndarray, vecs: np.ndarray, p: int = P) -> tuple[np.ndarray, int]:
    """Return ``vecs @ mat.T mod p`` and how many rows of ``mat`` hold an entry not below ``p``.

    The products are exact only when that count is zero.
    """
    if vecs.ndim != 2 or vecs.shape[1] != mat.shape[1]:
        raise ValueError(f"vectors of shape {vecs.shape} do not fit a matrix of {mat.shape}")
    if vecs.shape[0] == 0 or mat.shape[1] == 0:
        return np.zeros((vecs.shape[0], mat.shape[0]), dtype=np.int64), 0
    out, top = _matvecs_mod(mat, np.ascontiguousarray(vecs, dtype=np.float64), p, exact_block(p))
    return out, int((top >= p).sum())


def matvecs_mod(mat: np.ndarray, vecs: np.ndarray, p: int = P) -> np.ndarray:
    """Return ``vecs @ mat.T mod p`` (int64, shape (t, rows)) for ``vecs`` of shape (t, cols)."""
    return matvecs_mod_checked(mat, vecs, p)[0]


@cuda.jit(cache=False)
def _matmul_mod_cuda_kernel(a, b, c, p):  # pragma: no cover - needs a GPU or the simulator
    """Tiled ``c = a @ b mod p`` with int64 accumulation in shared-memory tiles."""
    sa = cuda.shared.array((CUDA_TILE, CUDA_TILE), dtype=numba.int64)
    sb = cuda.shared.array((CUDA_TILE, CUDA_TILE), dtype=numba.int64)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.y * CUDA_TILE + ty
    col = cuda.blockIdx.x * CUDA_TILE + tx
    m, k = a.shape
    n = b.shape[1]
    acc = numba.int64(0)
    for t in range((k + CUDA_TILE - 1) // CUDA_TILE):
        ka = t * CUDA_TILE + tx
        kb = t * CUDA_TILE + ty
        sa[ty, tx] = numba.int64(a[row, ka]) if row < m and ka < k else numba.int64(0)
        sb[ty, tx] = numba.int64(b[kb, col]) if kb < k and col < n else numba.int64(0)
        cuda.syncthreads()
        for q in range(CUDA_TILE):
            acc += sa[ty, q] * sb[q, tx]
        cuda.syncthreads()
    if row < m and col < n:
        c[row, col] = numba.uint32(acc % p)


def matmul_mod_cuda(a: np.ndarray, b: np.ndarray, p: int = P) -> np.ndarray:
    """Return ``a @ b mod p`` (uint32) computed on the GPU with ``numba.cuda``."""
    m, k = a.shape
    n = b.shape[1]
    if k >= 2**23:
        raise ValueError("inner dimension too large for exact int64 accumulation")
    d_a = cuda.to_device(np.ascontiguousarray(a))
    d_b = cuda.to_device(np.ascontiguousarray(b))
    d_c = cuda.device_array((m, n), dtype=np.uint32)
    grid = ((n + CUDA_TILE - 1) // CUDA_TILE, (m + CUDA_TILE - 1) // CUDA_TILE)
    _matmul_mod_cuda_kernel[grid, (CUDA_TILE, CUDA_TILE)](d_a, d_b, d_c, p)
    return d_c.copy_to_host()


@njit(inline="always")
def _splitmix64(state):  # pragma: no cover - compiled
    """Return the SplitMix64 output for one counter state (uint64 arithmetic wraps)."""
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(parallel=True, cache=True)
def _fill_mod(key, first_row, rows, cols, p):  # pragma: no cover - compiled
    """Return rows ``first_row..first_row+rows`` of the seeded matrix with ``cols`` columns."""
    out = np.empty((rows, cols), dtype=np.uint32)
    golden = np.uint64(_GOLDEN)
    for i in prange(rows):
        base = np.uint64(first_row + i) * np.uint64(cols)
        for j in range(cols):
            state = key + (base + np.uint64(j) + np.uint64(1)) * golden
            out[i, j] = np.uint32(_splitmix64(state) % np.uint64(p))
    return out


@njit(parallel=True, cache=True)
def _fill_rows_mod(key, rows, cols, p):  # pragma: no cover - compiled
    """Return the listed ``rows`` of the seeded matrix with ``cols`` columns."""
    out = np.empty((rows.shape[0], cols), dtype=np.uint32)
    golden = np.uint64(_GOLDEN)
    for q in prange(rows.shape[0]):
        base = np.uint64(rows[q]) * np.uint64(cols)
        for j in range(cols):
            state = key + (base + np.uint64(j) + np.uint64(1)) * golden
            out[q, j] = np.uint32(_splitmix64(state) % np.uint64(p))
    return out


def seeded_row_set(key: int, rows: np.ndarray, cols: int, p: int = P) -> np.ndarray:
    """Return the listed rows of the seeded matrix, in one kernel launch."""
    if not 0 <= key < 2**64:
        raise ValueError("key must be a 64-bit unsigned integer")
    return _fill_rows_mod(np.uint64(key), np.asarray(rows, dtype=np.int64), cols, p)


def seeded_rows(key: int, first_row: int, rows: int, cols: int, p: int = P) -> np.ndarray:
    """Return rows of the matrix whose entry (i, j) is SplitMix64(key, i*cols + j) mod ``p``."""
    if not 0 <= key < 2**64:
        raise ValueError("key must be a 64-bit unsigned integer")
    return _fill_mod(np.uint64(key), first_row, rows, cols, p)


def seeded_entry_reference(key: int, index: int, p: int = P) -> int:
    """Return one entry of a seeded matrix in pure Python (the specification of the stream)."""
    z = (key + (index + 1) * _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) % p
