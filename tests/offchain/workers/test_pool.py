import threading

import numpy as np
import pytest

from offchain.workers import pool
from offchain.workers.kernels.modp import P
from offchain.workers.workload_errors import InvalidInput
from offchain.workers.workloads import get_workload


def members(count):
    return tuple(pool.local_member(f"node-{i}", device="cpu") for i in range(count))


def faulty(node_id):
    """A member that returns a wrong product."""

    def run(workload_id, inputs):
        out = get_workload(workload_id).run(inputs, device="cpu")
        return {"c": out["c"] + 1}

    return pool.Member(node_id, run)


@pytest.mark.parametrize(
    ("m", "k", "n", "tile_rows", "tile_cols"),
    [(1, 1, 1, None, None), (100, 80, 90, None, 40), (67, 31, 5, 7, 2), (3, 10, 200, None, None)],
)
def test_split_product__modp__equals_single_node_exactly(m, k, n, tile_rows, tile_cols):
    rng = np.random.default_rng(m + k + n)
    inputs = {
        "a": rng.integers(0, P, (m, k), dtype=np.uint32),
        "b": rng.integers(0, P, (k, n), dtype=np.uint32),
    }
    group = pool.Pool("operator", members(3))
    result = pool.split_product(group, "matmul-modp", inputs, rng, tile_rows, tile_cols)
    single = get_workload("matmul-modp").run(inputs, device="cpu")["c"]
    assert np.array_equal(result.outputs["c"], single)
    covered = sum(
        (b.row1 - b.row0) * (b.col1 - b.col0) for bs in result.assignments.values() for b in bs
    )
    assert covered == m * n and not result.rejected


def test_split_product__f32__equals_single_node_within_rounding():
    rng = np.random.default_rng(1)
    inputs = {
        "a": rng.standard_normal((150, 70)).astype(np.float32),
        "b": rng.standard_normal((70, 40)).astype(np.float32),
    }
    result = pool.split_product(pool.Pool("op", members(2)), "matmul-f32", inputs, rng, 16, 16)
    single = get_workload("matmul-f32").run(inputs, device="cpu")["c"]
    np.testing.assert_allclose(result.outputs["c"], single, rtol=1e-5, atol=1e-5)
    assert get_workload("matmul-f32").verify(inputs, result.outputs, rng).accepted


def test_split_product__faulty_member__rejected_and_its_block_redone():
    rng = np.random.default_rng(2)
    inputs = {
        "a": rng.integers(0, P, (40, 30), dtype=np.uint32),
        "b": rng.integers(0, P, (30, 20), dtype=np.uint32),
    }
    group = pool.Pool("op", (faulty("bad"), *members(2)))
    result = pool.split_product(group, "matmul-modp", inputs, rng, tile_rows=5)
    assert np.array_equal(result.outputs["c"], get_workload("matmul-modp").run(inputs)["c"])
    assert [node for node, _, _ in result.rejected] == ["bad"]
    assert "bad" not in result.assignments


def test_split_product__last_block_rejected_after_queue_drained__honest_member_redoes_it():
    # The faulty member answers only after the honest ones have done every other block and
    # found the queue empty: they must still be there to take its block back.
    rng = np.random.default_rng(6)
    inputs = {
        "a": rng.integers(0, P, (20, 8), dtype=np.uint32),
        "b": rng.integers(0, P, (8, 6), dtype=np.uint32),
    }
    blocks = 10  # 20 rows in tiles of 2
    holding, others_done = threading.Event(), threading.Event()
    done = []

    def late_and_wrong(workload_id, block):
        holding.set()
        others_done.wait(timeout=10)
        return {"c": get_workload(workload_id).run(block, device="cpu")["c"] + 1}

    def honest(member):
        def run(workload_id, block):
            holding.wait(timeout=10)
            out = member.run(workload_id, block)
            done.append(1)
            if len(done) == blocks - 1:
                others_done.set()
            return out

        return pool.Member(member.node_id, run)

    group = pool.Pool("op", (pool.Member("late", late_and_wrong), *map(honest, members(2))))
    result = pool.split_product(group, "matmul-modp", inputs, rng, tile_rows=2)
    assert others_done.is_set()
    assert np.array_equal(result.outputs["c"], get_workload("matmul-modp").run(inputs)["c"])
    assert [node for node, _, _ in result.rejected] == ["late"]


def unreachable(node_id):
    """A member whose connection fails."""

    def run(workload_id, inputs):
        raise ConnectionResetError("router closed the stream")

    return pool.Member(node_id, run)


def test_split_product__member_connection_lost__block_redone_elsewhere():
    rng = np.random.default_rng(5)
    inputs = {
        "a": rng.integers(0, P, (30, 12), dtype=np.uint32),
        "b": rng.integers(0, P, (12, 10), dtype=np.uint32),
    }
    group = pool.Pool("op", (unreachable("gone"), *members(1)))
    result = pool.split_product(group, "matmul-modp", inputs, rng, tile_rows=4)
    assert np.array_equal(result.outputs["c"], get_workload("matmul-modp").run(inputs)["c"])
    assert result.rejected[0][0] == "gone" and "ConnectionResetError" in result.rejected[0][2]


def test_split_product__every_member_faulty__fails():
    rng = np.random.default_rng(3)
    inputs = {
        "a": rng.integers(0, P, (8, 8), dtype=np.uint32),
        "b": rng.integers(0, P, (8, 8), dtype=np.uint32),
    }
    with pytest.raises(pool.PoolError, match="blocks left"):
        pool.split_product(pool.Pool("op", (faulty("x"), faulty("y"))), "matmul-modp", inputs, rng)
    with pytest.raises(pool.PoolError, match="no members"):
        pool.split_product(pool.Pool("op", ()), "matmul-modp", inputs, rng)


def test_split_product__not_a_product__refused():
    rng = np.random.default_rng(4)
    with pytest.raises(InvalidInput, match="splits only"):
        pool.split_product(pool.Pool("op", members(1)), "mlp-infer", {"x": np.zeros((2, 64))}, rng)


def test_plan_blocks__tiles_cover_the_product_once():
    blocks = pool.plan_blocks(10, 7, 3, 4)
    cells = np.zeros((10, 7), dtype=int)
    for b in blocks:
        cells[b.row0 : b.row1, b.col0 : b.col1] += 1
    assert (cells == 1).all() and len(blocks) == 8
    with pytest.raises(InvalidInput):
        pool.plan_blocks(10, 7, 0)


def test_pool__power_is_the_sum_of_members():
    group = pool.Pool(
        "op", (pool.local_member("a", power_e=1.5), pool.local_member("b", power_e=2))
    )
    assert group.power_e == 3.5
