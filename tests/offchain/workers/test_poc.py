import math

import numpy as np
import pytest

from offchain.protocol import merkle
from offchain.workers import poc
from offchain.workers.kernels.modp import P, matmul_mod, seeded_entry_reference
from offchain.workers.verdict import Verdict
from offchain.workers.workload_errors import InvalidInput

FAST_E = 1e-6  # a claim so modest that no honest round here misses its deadline


def challenge(rng, n=48):
    return poc.Challenge(poc.new_seed(rng), n)


class SkippingProver(poc.HonestProver):
    """Computes only the first ``fraction`` of the rows and commits zeros for the rest."""

    def __init__(self, fraction: float):
        super().__init__()
        self.fraction = fraction

    def commit(self, ch):
        a, b = poc.challenge_inputs(ch)
        done = math.floor(self.fraction * ch.n)
        product = np.zeros((ch.n, ch.n), dtype=np.uint32)
        product[:done] = matmul_mod(a[:done], b)
        self._product, self._tree = product, poc.row_tree(product)
        return self._tree.root


class ReplayProver(poc.HonestProver):
    """Answers every challenge with the product of one fixed challenge (old or another seed)."""

    def __init__(self, fixed: poc.Challenge):
        super().__init__()
        self.fixed = fixed

    def commit(self, ch):
        return super().commit(self.fixed)


def test_challenge_inputs__follow_the_specified_stream():
    rng = np.random.default_rng(0)
    ch = challenge(rng, 16)
    a, b = poc.challenge_inputs(ch)
    key_a, key_b = poc.matrix_keys(ch)
    assert a.shape == b.shape == (16, 16) and a.dtype == np.uint32
    assert a[3, 5] == seeded_entry_reference(key_a, 3 * 16 + 5)
    assert b[15, 0] == seeded_entry_reference(key_b, 15 * 16)
    assert (a < P).all() and not np.array_equal(a, b)
    again, _ = poc.challenge_inputs(poc.Challenge(ch.seed, 16))
    other, _ = poc.challenge_inputs(challenge(rng, 16))
    assert np.array_equal(a, again) and not np.array_equal(a, other)


@pytest.mark.parametrize(
    "ch",
    [
        poc.Challenge(b"\x00" * 31, 64),
        poc.Challenge(b"\x00" * 32, 8),
        poc.Challenge(b"\x00" * 32, 9000),
    ],
)
def test_challenge__bad_seed_or_size__refused(ch):
    with pytest.raises(InvalidInput):
        poc.matrix_keys(ch)


def test_round__honest_node__accepted_with_positive_e():
    rng = np.random.default_rng(1)
    for n in (16, 33, 64):
        timing = poc.run_round(poc.HonestProver(), challenge(rng, n), rng, claimed_e=FAST_E)
        assert timing.result.accepted, timing.result.reason
        assert timing.result.e == pytest.approx(poc.e_from_time(n, timing.result.elapsed_s))


def test_round__honest_node_with_numba_strategy__accepted():
    rng = np.random.default_rng(2)
    timing = poc.run_round(poc.HonestProver("numba"), challenge(rng), rng, claimed_e=FAST_E)
    assert timing.result.accepted


def test_round__skipping_node__caught_at_the_stated_rate():
    rng = np.random.default_rng(3)
    n, k, fraction, trials = 32, 4, 0.75, 300
    caught = 0
    for _ in range(trials):
        result = poc.run_round(SkippingProver(fraction), challenge(rng, n), rng, FAST_E, k=k).result
        caught += not result.accepted
    stated = poc.stated_catch(n, fraction, k)
    assert stated == pytest.approx(1 - math.comb(24, 4) / math.comb(32, 4))
    assert abs(caught / trials - stated) <= 4.5 * math.sqrt(stated * (1 - stated) / trials)


def test_round__skipping_every_row__always_caught():
    rng = np.random.default_rng(4)
    for _ in range(5):
        result = poc.run_round(SkippingProver(0.0), challenge(rng), rng, FAST_E).result
        assert not result.accepted and "not row" in result.reason
    assert poc.stated_catch(48, 0.0) == 1.0


def test_round__old_answer_or_other_seed__always_caught():
    rng = np.random.default_rng(5)
    old = challenge(rng)
    for _ in range(5):
        current = challenge(rng)
        result = poc.run_round(ReplayProver(old), current, rng, FAST_E).result
        assert not result.accepted and result.e == 0.0
        other_seed = poc.Challenge(poc.new_seed(rng), current.n)
        assert not poc.run_round(ReplayProver(other_seed), current, rng, FAST_E).result.accepted


def test_check_openings__tampered_answers__rejected():
    rng = np.random.default_rng(6)
    ch = challenge(rng)
    prover = poc.HonestProver()
    root = prover.commit(ch)
    rows = poc.choose_rows(ch.n, 4, rng)
    good = prover.open(rows)
    assert poc.check_openings(ch, root, rows, good).accepted
    assert not poc.check_openings(ch, root, rows, good[:-1]).accepted
    assert not poc.check_openings(ch, root, rows[::-1], good).accepted
    short = poc.RowOpening(good[0].index, good[0].row[:-4], good[0].proof)
    assert "length" in poc.check_openings(ch, root, rows[:1], [short]).reason
    bad_proof = poc.RowOpening(good[0].index, good[0].row, (b"\x11" * 32,) + good[0].proof[1:])
    assert "root" in poc.check_openings(ch, root, rows[:1], [bad_proof]).reason
    # A row moved to another index does not verify: the index is in the leaf.
    moved = poc.RowOpening(rows[1], good[0].row, good[0].proof)
    assert not poc.check_openings(ch, root, rows[1:2], [moved]).accepted


def test_row_tree__leaf_is_index_and_row_bytes():
    product = np.arange(12, dtype=np.uint32).reshape(3, 4)
    tree = poc.row_tree(product)
    leaf = merkle.leaf_hash((1).to_bytes(4, "big") + product[1].astype("<u4").tobytes())
    assert merkle.verify(tree.root, leaf, tree.proof(1))


def test_judge_round__too_slow_for_claimed_e__fails():
    ok = Verdict(True, "rows match")
    n = 1024
    limit = poc.deadline_s(n, claimed_e=2.0)
    assert limit == pytest.approx(
        poc.ops(n) / (2.0 * poc.REFERENCE_OPS_PER_S) * poc.DEADLINE_SLACK + poc.LATENCY_ALLOWANCE_S
    )
    slow = poc.judge_round(n, ok, limit * 1.01, claimed_e=2.0)
    assert not slow.accepted and "over" in slow.reason and slow.e == 0.0
    fast = poc.judge_round(n, ok, limit * 0.5, claimed_e=2.0)
    assert fast.accepted and fast.e == pytest.approx(poc.e_from_time(n, limit * 0.5))
    wrong = poc.judge_round(n, Verdict(False, "row 3 wrong"), 0.001, claimed_e=2.0)
    assert not wrong.accepted and wrong.reason == "row 3 wrong"


def test_run_round__slow_node__fails_on_its_clock():
    rng = np.random.default_rng(7)
    ticks = iter([0.0, 100.0, 100.1, 100.2])
    timing = poc.run_round(
        poc.HonestProver(), challenge(rng, 16), rng, claimed_e=1.0, clock=lambda: next(ticks)
    )
    assert not timing.result.accepted and timing.prover_s == pytest.approx(100.1)


def test_e_from_time__reference_machine_is_one_e():
    n = poc.STANDARD_N
    assert poc.e_from_time(n, poc.ops(n) / poc.REFERENCE_OPS_PER_S) == pytest.approx(1.0)
    assert poc.e_from_time(n, 0.5 * poc.ops(n) / poc.REFERENCE_OPS_PER_S) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        poc.e_from_time(n, 0.0)


def test_node_e__median_of_rounds_zero_after_a_failure():
    rounds = [poc.RoundResult(True, "ok", 1.0, e) for e in (3.0, 1.0, 2.0, 10.0, 2.5)]
    assert poc.node_e(rounds) == 2.5
    assert poc.node_e(rounds[:2]) == 0.0  # fewer than MIN_ROUNDS
    failed = [*rounds, poc.RoundResult(False, "row 3 wrong", 1.0, 0.0)]
    assert poc.node_e(failed) == 0.0
