"""Whole networks of IBFT validators in the simulator: faults, losses, partitions, and a property.

The single-validator scenarios live in test_ibft.py.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offchain.protocol.quorum import max_faulty
from offchain.validators import sim as simulator
from offchain.validators.ibft import default_commit_digest
from offchain.validators.sim import Link, Partition, Simulation, SimulationError, default_value

FAULTS = [b for b in simulator.BEHAVIOURS if b != "honest"]


def sealed_twice(result, nodes=None):
    """Return (node, height) pairs where a node sealed more than one digest."""
    chosen = result.correct() if nodes is None else nodes
    return [(i, h) for i in chosen for h, s in result.nodes[i].seals.items() if len(s) > 1]


def assert_safe_and_live(result, nodes=None):
    assert result.conflicts(nodes) == {}
    assert result.all_decided(nodes)
    assert sealed_twice(result, nodes) == []


# --- 1. all honest ----------------------------------------------------------------------------


def test_all_honest_n4__every_node_decides_the_same_value_height_after_height():
    result = Simulation(n=4, seed=7).run(heights=5)
    assert_safe_and_live(result)
    for node in result.nodes:
        assert node.decisions == {h: default_value(7, h % 4, h, 0, 64) for h in range(1, 6)}
        assert set(node.decision_rounds.values()) == {0}
        times = [node.decision_times[h] for h in range(1, 6)]
        assert times == sorted(times) and len(set(times)) == 5


# --- 2 and 3. a bad or silent round-0 proposer ------------------------------------------------


def test_invalid_round0_proposal__round_changes_and_round1_proposal_is_decided():
    result = Simulation(n=4, seed=1, behaviours={1: "invalid_proposals"}).run(heights=1)
    assert_safe_and_live(result)
    for i in result.correct():
        assert result.nodes[i].decision_rounds[1] == 1
        assert result.nodes[i].decisions[1] == default_value(1, 2, 1, 1, 64)


def test_silent_proposer__the_timer_expires_and_the_next_round_decides():
    result = Simulation(n=4, seed=1, behaviours={1: "silent"}, base_timeout=10).run(heights=1)
    assert_safe_and_live(result)
    for i in result.correct():
        assert result.nodes[i].decision_rounds[1] == 1
        # timeout 10, then ROUND-CHANGE, PRE-PREPARE, PREPARE, COMMIT of one delay each
        assert result.nodes[i].decision_times[1] == 14.0


# --- 18 and 19. f Byzantine validators --------------------------------------------------------


@pytest.mark.parametrize("behaviour", FAULTS)
def test_n7_with_f_byzantine_of_each_behaviour__later_heights_are_decided(behaviour):
    # validators 2 and 3 propose heights 2 and 3 at round 0
    sim = Simulation(n=7, seed=3, behaviours={2: behaviour, 3: behaviour}, jitter=0.5)
    result = sim.run(heights=5, until=5_000)
    assert max_faulty(7) == 2
    assert_safe_and_live(result)


def test_f_nodes_drop_half_of_their_messages__progress_continues():
    sim = Simulation(n=7, seed=4, behaviours={1: "lossy", 2: "lossy"}, jitter=0.5)
    result = sim.run(heights=6, until=5_000)
    assert_safe_and_live(result)
    lossy = result.nodes[1]
    assert lossy.messages_sent > 0  # it sent (and lost about half of) its messages


# --- 20. f+1 stopped --------------------------------------------------------------------------


def test_f_plus_1_stopped__no_progress_and_no_unsafe_decision__restarted_progress_resumes():
    crash = {2: (0.5, 300.0), 3: (0.5, 300.0)}
    sim = Simulation(n=4, seed=5, behaviours={2: "crash", 3: "crash"}, crash=crash)
    stalled = sim.run(heights=2, until=299.0)
    assert all(node.decisions == {} for node in stalled.nodes)
    resumed = sim.run(heights=2, until=3_000)
    everyone = range(4)
    assert resumed.conflicts(everyone) == {}
    assert resumed.all_decided()
    assert min(resumed.nodes[0].decision_times.values()) > 300.0
    assert sealed_twice(resumed, everyone) == []


# --- links: partitions, duplication, per-link delay -------------------------------------------


def test_partition_without_quorum__decides_nothing_until_it_heals():
    split = Partition(start=0.0, heal=100.0, groups=(frozenset({0, 1}), frozenset({2, 3})))
    result = Simulation(n=4, seed=6, partitions=[split]).run(heights=2, until=2_000)
    assert_safe_and_live(result)
    assert min(t for n in result.nodes for t in n.decision_times.values()) >= 100.0


def test_duplicated_and_delayed_links__still_agree():
    links = {(1, 0): Link(delay=5.0), (0, 2): Link(duplicate=1.0)}
    result = Simulation(n=4, seed=8, links=links, duplicate=0.3, stabilise_at=1_000).run(heights=3)
    assert_safe_and_live(result)


def test_simulation__is_a_function_of_its_seed():
    def play(seed):
        sim = Simulation(n=5, seed=seed, behaviours={0: "lossy"}, jitter=1.0, drop=0.2)
        result = sim.run(heights=3, until=2_000)
        return [
            (n.decisions, n.decision_times, n.messages_sent, n.bytes_sent) for n in result.nodes
        ]

    assert play(11) == play(11)
    assert play(11) != play(12)


def test_simulation__reports_messages_and_bytes_per_node():
    result = Simulation(n=4, seed=9).run(heights=1)
    for node in result.nodes:
        assert node.messages_sent >= 6  # a PREPARE and a COMMIT to each of 3 peers
        assert node.bytes_sent > 100 * node.messages_sent
    assert result.messages() == sum(n.messages_sent for n in result.nodes)


def test_simulation__rejects_bad_arguments():
    with pytest.raises(SimulationError):
        Simulation(n=4, behaviours={4: "silent"})
    with pytest.raises(SimulationError):
        Simulation(n=4, behaviours={0: "sleepy"})
    with pytest.raises(SimulationError):
        Simulation(n=4, drop=1.5)
    with pytest.raises(ValueError):
        Simulation(n=4, seal_scheme="rsa")


def test_real_bls_seals__every_node_seals_the_decided_digest():
    result = Simulation(n=4, seed=10, seal_scheme="bls").run(heights=1)
    assert_safe_and_live(result)
    for node in result.nodes:
        assert node.seals[1] == {default_commit_digest(1, node.decisions[1])}


# --- 21. the property: safety always, liveness after stabilisation ----------------------------


@st.composite
def scenarios(draw, max_n=16):
    n = draw(st.integers(4, max_n))
    faulty = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=max_faulty(n)))
    behaviours = {i: draw(st.sampled_from(FAULTS)) for i in faulty}
    crash = {
        i: (draw(st.floats(0, 20)), draw(st.floats(20, 40)))
        for i, b in behaviours.items()
        if b == "crash"
    }
    return dict(
        n=n,
        seed=draw(st.integers(0, 2**32)),
        behaviours=behaviours,
        crash=crash,
        jitter=draw(st.floats(0, 2)),
        drop=draw(st.floats(0, 0.4)),
        duplicate=draw(st.floats(0, 0.2)),
        stabilise_at=draw(st.floats(0, 40)),
        base_timeout=4.0,
        max_timeout=32.0,
    )


def check_scenario(kwargs, heights):
    result = Simulation(**kwargs).run(heights=heights, until=kwargs["stabilise_at"] + 500)
    runs_protocol = [i for i, n in enumerate(result.nodes) if n.behaviour in ("honest", "crash")]
    assert result.conflicts(runs_protocol) == {}  # safety, crashed-and-restarted nodes too
    assert sealed_twice(result, runs_protocol) == []
    assert result.all_decided()  # liveness after stabilisation


@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenarios())
def test_property__safety_always_and_liveness_after_stabilisation(kwargs):
    check_scenario(kwargs, heights=2)


@pytest.mark.slow
@settings(max_examples=3_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(max_n=22))
def test_property__safety_always_and_liveness_after_stabilisation__slow(kwargs):
    check_scenario(kwargs, heights=3)
