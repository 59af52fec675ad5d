"""Computing pools: one operator identity over several compute nodes that share a product.

The operator cuts C = A B into blocks of rows (and optionally columns), hands them to members
from one queue so faster members take more, checks every returned block with the workload's
own verifier, gives a rejected or failed block to another member (and stops using the member
that failed), and joins the blocks into C. Members are callables, so the compute node agent
can put a network call behind one; ``local_member`` runs the registry in this process.
"""

import collections
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from offchain.workers.workload_errors import InvalidInput, WorkloadError
from offchain.workers.workloads.base import Tensors
from offchain.workers.workloads.registry import get_workload

log = logging.getLogger(__name__)

PRODUCTS = ("matmul-f32", "matmul-modp")
RunFn = Callable[[str, Tensors], Mapping[str, np.ndarray]]


class PoolError(WorkloadError):
    """The pool could not finish: every member failed or was rejected."""


@dataclass(frozen=True)
class Block:
    """Rows ``row0:row1`` and columns ``col0:col1`` of the product."""

    row0: int
    row1: int
    col0: int
    col1: int


@dataclass(frozen=True)
class Member:
    """A compute node in a pool: its id, its E power, and how to run work on it."""

    node_id: str
    run: RunFn
    power_e: float = 1.0


@dataclass(frozen=True)
class Pool:
    """An operator identity and the nodes it groups."""

    operator: str
    members: tuple[Member, ...]

    @property
    def power_e(self) -> float:
        """Return the pool's E: the sum of its members'."""
        return sum(m.power_e for m in self.members)


@dataclass
class PoolResult:
    """The joined product, who computed which blocks, and the blocks that were rejected."""

    outputs: dict[str, np.ndarray]
    assignments: dict[str, list[Block]] = field(default_factory=dict)
    rejected: list[tuple[str, Block, str]] = field(default_factory=list)


def local_member(node_id: str, device: str | None = None, power_e: float = 1.0) -> Member:
    """Return a member that runs workloads from the registry in this process."""

    def run(workload_id: str, inputs: Tensors) -> Mapping[str, np.ndarray]:
        return get_workload(workload_id).run(inputs, device=device)

    return Member(node_id=node_id, run=run, power_e=power_e)


def plan_blocks(m: int, n: int, tile_rows: int, tile_cols: int | None = None) -> list[Block]:
    """Return the blocks that tile an ``m`` x ``n`` product, row-major."""
    if tile_rows < 1 or (tile_cols is not None and tile_cols < 1):
        raise InvalidInput("tiles must be at least one row and one column")
    cols = n if tile_cols is None else tile_cols
    return [
        Block(r, min(m, r + tile_rows), c, min(n, c + cols))
        for r in range(0, m, tile_rows)
        for c in range(0, n, cols)
    ]


def block_inputs(inputs: Tensors, block: Block) -> dict[str, np.ndarray]:
    """Return the inputs whose product is ``block`` of the whole product."""
    return {
        "a": np.ascontiguousarray(inputs["a"][block.row0 : block.row1]),
        "b": np.ascontiguousarray(inputs["b"][:, block.col0 : block.col1]),
    }


def split_product(
    pool: Pool,
    workload_id: str,
    inputs: Tensors,
    rng: np.random.Generator,
    tile_rows: int | None = None,
    tile_cols: int | None = None,
) -> PoolResult:
    """Return the product of ``inputs`` computed block by block across the pool's members."""
    if workload_id not in PRODUCTS:
        raise InvalidInput(f"a pool splits only {PRODUCTS}, not {workload_id!r}")
    if not pool.members:
        raise PoolError(f"pool {pool.operator} has no members")
    workload = get_workload(workload_id)
    sizes = workload.validate(inputs)
    m, n = sizes["m"], sizes["n"]
    rows = tile_rows or math.ceil(m / (2 * len(pool.members)))
    todo = collections.deque(plan_blocks(m, n, rows, tile_cols))
    out = np.empty((m, n), dtype=inputs["a"].dtype)
    result = PoolResult(outputs={"c": out})
    # Guards ``todo`` and ``remaining``. A member with nothing to take waits while blocks are
    # still out with other members: one of them may fail and hand its block back.
    changed = threading.Condition()
    remaining = [len(todo)]
    rngs = rng.spawn(len(pool.members))

    def take() -> Block | None:
        with changed:
            while not todo and remaining[0]:
                changed.wait()
            return todo.popleft() if todo else None

    def serve(member: Member, member_rng: np.random.Generator) -> None:
        while (block := take()) is not None:
            sub = block_inputs(inputs, block)
            try:
                answer = dict(member.run(workload_id, sub))
                verdict = workload.verify(sub, answer, member_rng)
                reason = verdict.reason
            except (WorkloadError, OSError, RuntimeError) as exc:
                # A member's own failure (bad answer, lost connection, timeout): its block
                # goes back to the queue and the member takes no more.
                verdict, reason = None, f"failed: {type(exc).__name__}: {exc}"
            except BaseException:
                # Not a member failure but a bug: hand the block back so no one waits for it.
                with changed:
                    todo.append(block)
                    changed.notify_all()
                raise
            if verdict is None or not verdict.accepted:
                log.warning(
                    "pool %s: member %s block %s rejected: %s",
                    pool.operator,
                    member.node_id,
                    block,
                    reason,
                )
                with changed:
                    result.rejected.append((member.node_id, block, reason))
                    todo.append(block)
                    changed.notify_all()
                return
            out[block.row0 : block.row1, block.col0 : block.col1] = answer["c"]
            with changed:
                result.assignments.setdefault(member.node_id, []).append(block)
                remaining[0] -= 1
                if not remaining[0]:
                    changed.notify_all()

    threads = [
        threading.Thread(target=serve, args=(member, member_rng), daemon=True)
        for member, member_rng in zip(pool.members, rngs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if remaining[0]:
        raise PoolError(f"pool {pool.operator}: {remaining[0]} blocks left, no member to take them")
    return result
