"""Proof of compute: seeded ``matmul-modp`` challenges, row commitments, and the E unit.

A round: the validator sends ``Challenge(seed, n)``; the node derives A and B from the seed,
computes C = A B mod P, and answers with the Merkle root of C's rows (leaf =
``leaf_hash(u32be(i) || row_i as little-endian u32)``; the index is in the leaf because sorted-pair
proofs do not fix a position). The validator times that answer, then asks for ``k`` distinct
random rows with their proofs, and checks each against row i of A times B, which costs it
``k n^2`` of the node's ``n^3``. A node that computed only a fraction ``p`` of the rows is caught
with probability ``1 - C(floor(p n), k) / C(n, k)`` (at least ``1 - p^k``).

E: a node's rate is ``2 n^3 / t`` modular operations per second, where ``t`` runs from sending
the challenge to receiving the root; ``E = rate / REFERENCE_OPS_PER_S``, so the reference
machine (docs/workloads.md) has E = 1. A node's E is the median over at least ``MIN_ROUNDS``
accepted rounds, and 0 if any round failed. A round whose answer comes later than
``deadline_s(n, claimed_e)`` fails.
"""

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from offchain.crypto.hashing import keccak
from offchain.protocol import merkle
from offchain.workers.kernels.modp import (
    DEFAULT_STRATEGY,
    P,
    matmul_mod,
    seeded_row_set,
    seeded_rows,
)
from offchain.workers.verdict import Verdict
from offchain.workers.workload_errors import InvalidInput

DOMAIN = b"emc-poc-v1"
STANDARD_N = 1024
MIN_N, MAX_N = 16, 8192
OPEN_ROWS = 16
# 1 E: the rate of the reference machine (docs/workloads.md), modular operations per second.
REFERENCE_OPS_PER_S = 1.0e10
DEADLINE_SLACK = 1.5  # the answer may take 1.5x the time the claimed E implies...
LATENCY_ALLOWANCE_S = 0.5  # ...plus this much for the network.
MIN_ROUNDS = 3


@dataclass(frozen=True)
class Challenge:
    """A validator's request: derive inputs from ``seed`` and multiply two n x n matrices."""

    seed: bytes
    n: int


@dataclass(frozen=True)
class RowOpening:
    """One opened row of the committed product, with its Merkle proof."""

    index: int
    row: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class RoundResult:
    """The outcome of one challenge round: accepted or not, why, how long, and the E shown."""

    accepted: bool
    reason: str
    elapsed_s: float
    e: float


class Prover(Protocol):
    """What a node offers a validator: a commitment, then openings."""

    def commit(self, challenge: Challenge) -> bytes:
        """Return the Merkle root of the product's rows."""

    def open(self, indices: Sequence[int]) -> list[RowOpening]:
        """Return the openings of ``indices``."""


def check_challenge(challenge: Challenge) -> None:
    """Raise ``InvalidInput`` unless the challenge has a 32-byte seed and a size in range."""
    if not isinstance(challenge.seed, bytes) or len(challenge.seed) != 32:
        raise InvalidInput("challenge seed must be 32 bytes")
    if not isinstance(challenge.n, int) or not MIN_N <= challenge.n <= MAX_N:
        raise InvalidInput(f"challenge size must lie in [{MIN_N}, {MAX_N}]")


def matrix_keys(challenge: Challenge) -> tuple[int, int]:
    """Return the SplitMix64 keys of A and B for ``challenge``."""
    check_challenge(challenge)
    digest = keccak(DOMAIN + challenge.seed + challenge.n.to_bytes(4, "big"))
    return int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big")


def challenge_inputs(challenge: Challenge) -> tuple[np.ndarray, np.ndarray]:
    """Return the matrices A and B (uint32, entries in [0, P)) that ``challenge`` names."""
    key_a, key_b = matrix_keys(challenge)
    n = challenge.n
    return seeded_rows(key_a, 0, n, n), seeded_rows(key_b, 0, n, n)


def encode_row(index: int, row: np.ndarray) -> bytes:
    """Return the committed bytes of row ``index``: its index, then its entries."""
    return index.to_bytes(4, "big") + np.ascontiguousarray(row, dtype="<u4").tobytes()


def row_tree(product: np.ndarray) -> merkle.MerkleTree:
    """Return the Merkle tree over the rows of ``product``."""
    return merkle.build([merkle.leaf_hash(encode_row(i, row)) for i, row in enumerate(product)])


class HonestProver:
    """A node that computes the whole product and keeps it to open rows."""

    def __init__(self, strategy: str = DEFAULT_STRATEGY):
        self._strategy = strategy
        self._product: np.ndarray | None = None
        self._tree: merkle.MerkleTree | None = None

    def commit(self, challenge: Challenge) -> bytes:
        """Return the root of the rows of the product that ``challenge`` names."""
        a, b = challenge_inputs(challenge)
        self._product = matmul_mod(a, b, strategy=self._strategy)
        self._tree = row_tree(self._product)
        return self._tree.root

    def open(self, indices: Sequence[int]) -> list[RowOpening]:
        """Return the committed rows ``indices`` with their proofs."""
        if self._product is None or self._tree is None:
            raise InvalidInput("nothing committed yet")
        return [
            RowOpening(
                index=i,
                row=np.ascontiguousarray(self._product[i], dtype="<u4").tobytes(),
                proof=tuple(self._tree.proof(i)),
            )
            for i in indices
        ]


def choose_rows(n: int, k: int, rng: np.random.Generator) -> list[int]:
    """Return ``min(k, n)`` distinct rows for the validator to open, drawn after the commit."""
    return sorted(int(i) for i in rng.choice(n, size=min(k, n), replace=False))


def expected_rows(challenge: Challenge, indices: Sequence[int]) -> np.ndarray:
    """Return rows ``indices`` of A B mod P, at a cost of ``len(indices) * n^2``."""
    key_a, key_b = matrix_keys(challenge)
    n = challenge.n
    a_rows = seeded_row_set(key_a, np.asarray(indices, dtype=np.int64), n)
    return matmul_mod(a_rows, seeded_rows(key_b, 0, n, n))


def check_openings(
    challenge: Challenge, root: bytes, indices: Sequence[int], openings: Sequence[RowOpening]
) -> Verdict:
    """Return whether ``openings`` are the rows ``indices`` of the right product under ``root``."""
    if [o.index for o in openings] != list(indices):
        return Verdict(False, "openings do not answer the rows asked for")
    expected = expected_rows(challenge, indices)
    for opening, want in zip(openings, expected, strict=True):
        row = np.frombuffer(opening.row, dtype="<u4")
        if row.shape != (challenge.n,):
            return Verdict(False, f"row {opening.index} has the wrong length")
        leaf = merkle.leaf_hash(encode_row(opening.index, row))
        if not merkle.verify(root, leaf, list(opening.proof)):
            return Verdict(False, f"row {opening.index} is not under the committed root")
        if not np.array_equal(row, want):
            return Verdict(False, f"row {opening.index} is not row {opening.index} of A B mod P")
    return Verdict(True, f"{len(indices)} opened rows match A B mod P")


def ops(n: int) -> int:
    """Return the modular operations of one challenge of size ``n``."""
    return 2 * n**3


def e_from_time(n: int, seconds: float) -> float:
    """Return the E that answering a size-``n`` challenge in ``seconds`` shows."""
    if seconds <= 0:
        raise ValueError("elapsed time must be positive")
    return ops(n) / seconds / REFERENCE_OPS_PER_S


def deadline_s(n: int, claimed_e: float) -> float:
    """Return the longest a node claiming ``claimed_e`` may take to answer a size-``n`` round."""
    if claimed_e <= 0:
        raise ValueError("claimed E must be positive")
    return ops(n) / (claimed_e * REFERENCE_OPS_PER_S) * DEADLINE_SLACK + LATENCY_ALLOWANCE_S


def judge_round(n: int, verdict: Verdict, elapsed_s: float, claimed_e: float) -> RoundResult:
    """Return the round's result from the row check and the time the commitment took."""
    if not verdict.accepted:
        return RoundResult(False, verdict.reason, elapsed_s, 0.0)
    limit = deadline_s(n, claimed_e)
    if elapsed_s > limit:
        return RoundResult(
            False,
            f"answered in {elapsed_s:.3f} s, over {limit:.3f} s for E={claimed_e}",
            elapsed_s,
            0.0,
        )
    return RoundResult(True, verdict.reason, elapsed_s, e_from_time(n, elapsed_s))


def node_e(results: Sequence[RoundResult]) -> float:
    """Return a node's E: the median over its rounds, or 0 after a failure or too few rounds."""
    if len(results) < MIN_ROUNDS or not all(r.accepted for r in results):
        return 0.0
    return statistics.median(r.e for r in results)


def stated_catch(n: int, computed_fraction: float, k: int = OPEN_ROWS) -> float:
    """Return the chance of catching a node that computed ``computed_fraction`` of the rows."""
    good = math.floor(computed_fraction * n)
    k = min(k, n)
    return 1.0 - math.comb(good, k) / math.comb(n, k)


@dataclass(frozen=True)
class RoundTiming:
    """The outcome of a round driven in-process, and each side's time."""

    result: RoundResult
    prover_s: float
    verifier_s: float


def run_round(
    prover: Prover,
    challenge: Challenge,
    rng: np.random.Generator,
    claimed_e: float,
    k: int = OPEN_ROWS,
    clock: Callable[[], float] = time.perf_counter,
) -> RoundTiming:
    """Drive one round against ``prover`` in this process (the agents do it over the network)."""
    check_challenge(challenge)
    start = clock()
    root = prover.commit(challenge)
    committed = clock()
    indices = choose_rows(challenge.n, k, rng)
    openings = prover.open(indices)
    opened = clock()
    verdict = check_openings(challenge, root, indices, openings)
    checked = clock()
    result = judge_round(challenge.n, verdict, committed - start, claimed_e)
    return RoundTiming(result, prover_s=opened - start, verifier_s=checked - opened)


def new_seed(rng: np.random.Generator) -> bytes:
    """Return a fresh 32-byte challenge seed from the validator's generator."""
    return rng.bytes(32)


__all__ = ["P"]
