import random

import pytest

from offchain.protocol.frames import decode_body, encode_body
from offchain.protocol.wire import MAX_PEERS_IN_SUMMARY, Summary
from offchain.routers import table as tablelib
from offchain.routers.mesh import make_summary
from offchain.routers.table import (
    UNSTAKED_GAP_S,
    UNSTAKED_MAX_TIMEOUT_MS,
    NodeEntry,
    RoutingTable,
    UnknownNode,
    add_node,
    best_expected_by_workload,
    choose,
    expected_ms,
    finish_task,
    record_pong,
    record_rtt,
    remove_node,
    report_load,
    serves,
    start_task,
)


def node(peer: str, workloads=("echo",), staked=True, capacity=4, **kw) -> NodeEntry:
    return NodeEntry(peer, frozenset(workloads), e_power=1, capacity=capacity, staked=staked, **kw)


def table_of(*entries: NodeEntry) -> RoutingTable:
    table = RoutingTable()
    for entry in entries:
        table = add_node(table, entry)
    return table


RNG = random.Random(7)


def test_add_remove__index_follows_nodes():
    table = table_of(node("a", ("echo", "mm")), node("b", ("echo",)))
    assert set(table.by_workload["echo"]) == {"a", "b"}
    table = remove_node(table, "a")
    assert set(table.by_workload["echo"]) == {"b"}
    assert "mm" not in table.by_workload
    assert not serves(table, "mm")


def test_add__same_peer_again__replaces_entry_and_index():
    table = table_of(node("a", ("echo",)), node("a", ("mm",)))
    assert set(table.nodes) == {"a"}
    assert not serves(table, "echo")
    assert serves(table, "mm")


def test_functions__leave_input_table_unchanged():
    before = table_of(node("a"))
    after = start_task(report_load(before, "a", 9), "a", 0.0)
    assert before.nodes["a"].queue_depth == 0
    assert before.nodes["a"].in_flight == 0
    assert after.nodes["a"].queue_depth == 9
    assert after.nodes["a"].in_flight == 1


def test_update__unknown_node__raises():
    with pytest.raises(UnknownNode):
        report_load(RoutingTable(), "ghost", 1)
    with pytest.raises(UnknownNode):
        record_rtt(RoutingTable(), "ghost", 1.0)


def test_finish__node_already_gone__no_op():
    assert finish_task(RoutingTable(), "ghost", ok=True) == RoutingTable()


def test_choose__lower_rtt_wins():
    table = table_of(node("far", rtt_ms=50.0), node("near", rtt_ms=1.0))
    assert choose(table, "echo", RNG, now=0.0) == "near"


def test_choose__deeper_queue_loses():
    table = table_of(node("busy", queue_depth=8), node("idle"))
    assert choose(table, "echo", RNG, now=0.0) == "idle"


def test_choose__in_flight_counts_as_load():
    table = table_of(node("a"), node("b"))
    table = start_task(start_task(table, "a", 0.0), "a", 0.0)
    assert choose(table, "echo", RNG, now=0.0) == "b"


def test_choose__failures_lose_to_equal_sound_node():
    table = table_of(node("flaky", successes=1, failures=3), node("sound", successes=4))
    assert choose(table, "echo", RNG, now=0.0) == "sound"


def test_choose__ties__broken_at_random_over_all_tied():
    table = table_of(node("a"), node("b"), node("c"))
    picks = {choose(table, "echo", random.Random(seed), now=0.0) for seed in range(60)}
    assert picks == {"a", "b", "c"}


def test_choose__excluded_and_wrong_workload__skipped():
    table = table_of(node("a"), node("b", ("mm",)))
    assert choose(table, "echo", RNG, now=0.0, exclude=["a"]) is None
    assert choose(table, "mm", RNG, now=0.0) == "b"
    assert choose(table, "nothing", RNG, now=0.0) is None


def test_choose__node_at_capacity__not_chosen():
    table = table_of(node("a", capacity=1))
    table = start_task(table, "a", 0.0)
    assert choose(table, "echo", RNG, now=0.0) is None
    table = finish_task(table, "a", ok=True, service_ms=3.0)
    assert choose(table, "echo", RNG, now=0.0) == "a"


def test_choose__unstaked__short_tasks_only():
    table = table_of(node("u", staked=False))
    assert choose(table, "echo", RNG, now=10.0, timeout_ms=UNSTAKED_MAX_TIMEOUT_MS) == "u"
    assert choose(table, "echo", RNG, now=10.0, timeout_ms=UNSTAKED_MAX_TIMEOUT_MS + 1) is None


def test_choose__unstaked__intermittent():
    table = start_task(table_of(node("u", staked=False)), "u", 10.0)
    assert choose(table, "echo", RNG, now=10.1, timeout_ms=100) is None  # one at a time
    table = finish_task(table, "u", ok=True)
    assert choose(table, "echo", RNG, now=10.0 + UNSTAKED_GAP_S / 2, timeout_ms=100) is None
    assert choose(table, "echo", RNG, now=10.0 + UNSTAKED_GAP_S, timeout_ms=100) == "u"


def test_choose__staked_preferred_while_unstaked_resting():
    table = start_task(table_of(node("u", staked=False), node("s", rtt_ms=40.0)), "u", 0.0)
    table = finish_task(table, "u", ok=True)
    assert choose(table, "echo", RNG, now=0.1, timeout_ms=100) == "s"


def test_rtt_and_service__moving_averages():
    table = record_rtt(table_of(node("a", rtt_ms=10.0)), "a", 20.0)
    assert table.nodes["a"].rtt_ms == pytest.approx(12.0)
    table = finish_task(start_task(table, "a", 0.0), "a", ok=True, service_ms=110.0)
    assert table.nodes["a"].service_ms == pytest.approx(0.8 * 10.0 + 0.2 * 110.0)
    assert table.nodes["a"].successes == 1


def test_finish__failure__counted_and_service_untouched():
    table = finish_task(start_task(table_of(node("a")), "a", 0.0), "a", ok=False, service_ms=1e6)
    assert table.nodes["a"].failures == 1
    assert table.nodes["a"].service_ms == node("a").service_ms


def test_expected__grows_with_queue_and_rtt():
    base = expected_ms(node("a"))
    assert expected_ms(node("a", queue_depth=4)) > base
    assert expected_ms(node("a", rtt_ms=100.0)) > base
    assert expected_ms(node("a", queue_depth=4, capacity=8)) < expected_ms(node("a", queue_depth=4))


def test_best_expected__per_workload_minimum():
    table = table_of(node("a", ("echo",), rtt_ms=30.0), node("b", ("echo", "mm"), rtt_ms=2.0))
    best = best_expected_by_workload(table)
    assert best["echo"] == pytest.approx(expected_ms(table.nodes["b"]))
    assert set(best) == {"echo", "mm"}


def test_bad_inputs__value_error():
    with pytest.raises(ValueError):
        add_node(RoutingTable(), node("a", capacity=0))
    with pytest.raises(ValueError):
        report_load(table_of(node("a")), "a", -1)
    with pytest.raises(ValueError):
        record_rtt(table_of(node("a")), "a", -1.0)


def test_record_pong__rtt_average_and_queue_in_one_update():
    table = record_pong(table_of(node("a", rtt_ms=10.0)), "a", 20.0, 7)
    assert table.nodes["a"].rtt_ms == pytest.approx(12.0)
    assert table.nodes["a"].queue_depth == 7
    with pytest.raises(UnknownNode):
        record_pong(table, "ghost", 1.0, 0)
    with pytest.raises(ValueError):
        record_pong(table, "a", 1.0, -1)


def _many(count: int, **kw) -> RoutingTable:
    return table_of(*(node(f"n{i:04d}", **kw) for i in range(count)))


def test_choose__thousands_of_nodes__sampled_choice_spreads_load_like_the_full_scan():
    table = _many(2_000, capacity=4)
    rng = random.Random(1)
    for _ in range(2_000):
        table = start_task(table, choose(table, "echo", rng, 0.0, 1_000), 0.0)
    loads = [entry.in_flight for entry in table.nodes.values()]
    # One task per node would be perfect; the best of 16 random draws stays within 2.
    assert max(loads) <= 2
    assert sum(loads) == 2_000


def test_choose__sampled_draws_all_ineligible__falls_back_to_the_one_free_node():
    table = _many(200, capacity=1)
    for i in range(200):
        if i != 137:
            table = start_task(table, f"n{i:04d}", 0.0)
    for seed in range(20):
        assert choose(table, "echo", random.Random(seed), 0.0, 1_000) == "n0137"


def test_choose__sampled__same_seed_same_choice_and_never_an_excluded_node():
    table = _many(500)
    picks = [choose(table, "echo", random.Random(5), 0.0, 1_000) for _ in range(3)]
    assert len(set(picks)) == 1
    excluded = [f"n{i:04d}" for i in range(499)]
    assert choose(table, "echo", random.Random(5), 0.0, 1_000, exclude=excluded) == "n0499"


def test_admissible_workloads__unstaked_node__capped__staked_node__not() -> None:
    names = [f"w{i:03d}" for i in range(64)]
    assert len(tablelib.admissible_workloads(tablelib.RoutingTable(), names, staked=True)) == 64
    kept = tablelib.admissible_workloads(tablelib.RoutingTable(), names, staked=False)
    assert len(kept) == tablelib.UNSTAKED_MAX_WORKLOADS


def test_summary__unstaked_nodes_declaring_thousands_of_names__own_summary_still_accepted() -> None:
    """A flood of unstaked names neither grows the table past its cap nor spoils the summary."""
    table = tablelib.RoutingTable()
    table = tablelib.add_node(table, tablelib.NodeEntry("staked", frozenset({"echo"}), 1, 4, True))
    for n in range(300):
        names = [f"n{n}-w{i}" for i in range(64)]
        workloads = tablelib.admissible_workloads(table, names, staked=False)
        table = tablelib.add_node(table, tablelib.NodeEntry(f"u{n}", workloads, 1, 4, False))
    assert len(table.by_workload) <= tablelib.UNSTAKED_MAX_NAMES + 1
    expected = tablelib.best_expected_by_workload(table, MAX_PEERS_IN_SUMMARY)
    assert "echo" in expected  # the staked node's workload is never crowded out
    links = {f"12D3KooWrouter{i}": float(i) for i in range(400)}
    summary = make_summary("12D3KooWme", 1, links, expected)
    body = encode_body(summary.to_map())
    assert Summary.from_map(decode_body(body)) == summary  # what a neighbour accepts
    assert len(summary.links) == MAX_PEERS_IN_SUMMARY
    assert min(summary.links.values()) == 0  # the fastest links are the ones kept
