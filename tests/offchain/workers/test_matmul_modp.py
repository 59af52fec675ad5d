import numpy as np
import pytest

from offchain.workers.kernels import modp
from offchain.workers.workloads import get_workload

SHAPES = [(1, 1, 1), (2, 3, 4), (17, 1, 5), (1, 40, 1), (33, 64, 31), (70, 129, 66)]


def reference(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """Pure-Python big-integer product modulo p."""
    rows = [
        [sum(int(x) * int(y) for x, y in zip(row, col, strict=True)) % p for col in b.T]
        for row in a
    ]
    return np.array(rows, dtype=np.int64).reshape(a.shape[0], b.shape[1])


@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
@pytest.mark.parametrize("strategy", sorted(modp.STRATEGIES))
def test_matmul_mod__random_inputs__equals_pure_python(m, k, n, strategy):
    rng = np.random.default_rng(m + 100 * k + 10_000 * n)
    a = rng.integers(0, modp.P, (m, k), dtype=np.uint32)
    b = rng.integers(0, modp.P, (k, n), dtype=np.uint32)
    c = modp.matmul_mod(a, b, strategy=strategy)
    assert c.dtype == np.uint32
    assert np.array_equal(c, reference(a, b, modp.P))


def test_matmul_mod__largest_entries__exact():
    a = np.full((5, 300), modp.P - 1, dtype=np.uint32)
    b = np.full((300, 4), modp.P - 1, dtype=np.uint32)
    want = (300 * (modp.P - 1) ** 2) % modp.P
    for strategy in modp.STRATEGIES:
        assert (modp.matmul_mod(a, b, strategy=strategy) == want).all()


@pytest.mark.parametrize("strategy", sorted(modp.STRATEGIES))
def test_matmul_mod__inner_dim_beyond_exact_block__reduces_between_blocks(strategy):
    p = 2**25 - 39  # prime; exact_block(p) = 8, so k = 600 takes many blocks
    assert modp.exact_block(p) == 8
    rng = np.random.default_rng(5)
    a = rng.integers(0, p, (7, 600), dtype=np.uint32)
    b = rng.integers(0, p, (600, 9), dtype=np.uint32)
    assert np.array_equal(modp.matmul_mod(a, b, p, strategy=strategy), reference(a, b, p))


def test_exact_block__bad_modulus__refused():
    assert modp.exact_block(modp.P) == 8192
    with pytest.raises(ValueError):
        modp.exact_block(2**26)


def test_matvecs_mod__equals_pure_python():
    rng = np.random.default_rng(2)
    mat = rng.integers(0, modp.P, (13, 21), dtype=np.uint32)
    vecs = rng.integers(0, modp.P, (3, 21))
    want = reference(vecs, mat.T, modp.P)
    assert np.array_equal(modp.matvecs_mod(mat, vecs), want)
    with pytest.raises(ValueError):
        modp.matvecs_mod(mat, vecs[:, :20])


@pytest.mark.parametrize("trials", [1, 2, 3])
@pytest.mark.parametrize("p", [modp.P, 2**26 - 5])  # the second gives blocks of 2 terms
def test_matvecs_mod__any_trial_count_and_blocking__equals_pure_python(trials, p):
    rng = np.random.default_rng(trials)
    mat = rng.integers(0, p, (9, 11), dtype=np.uint32)
    vecs = rng.integers(0, p, (trials, 11))
    got, over = modp.matvecs_mod_checked(mat, vecs, p)
    assert over == 0
    assert np.array_equal(got, reference(vecs, mat.T, p))
    mat[[2, 7], [0, 10]] = p
    assert modp.matvecs_mod_checked(mat, vecs, p)[1] == 2


def test_seeded_rows__match_the_pure_python_stream():
    key = 0xDEADBEEF12345678
    rows = modp.seeded_rows(key, 3, 2, 7)
    for i in range(2):
        for j in range(7):
            assert rows[i, j] == modp.seeded_entry_reference(key, (3 + i) * 7 + j)
    assert np.array_equal(modp.seeded_rows(key, 0, 5, 7)[3:5], rows)
    assert (modp.seeded_rows(key, 0, 64, 64) < modp.P).all()
    listed = modp.seeded_row_set(key, np.array([4, 1, 3]), 7)
    assert np.array_equal(listed, modp.seeded_rows(key, 0, 5, 7)[[4, 1, 3]])
    with pytest.raises(ValueError):
        modp.seeded_rows(-1, 0, 1, 1)


def test_workload__run_and_verify():
    rng = np.random.default_rng(3)
    w = get_workload("matmul-modp")
    inputs = {
        "a": rng.integers(0, modp.P, (40, 50), dtype=np.uint32),
        "b": rng.integers(0, modp.P, (50, 30), dtype=np.uint32),
    }
    out = w.run(inputs, device="cpu")
    assert np.array_equal(out["c"], reference(inputs["a"], inputs["b"], modp.P))
    assert w.verify(inputs, out, rng).accepted
