from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offchain.net.conduct import ConductPolicy, PeerConduct
from offchain.protocol.wire import Summary
from offchain.routers import signing
from offchain.routers.mesh import (
    BENIGN,
    DROP,
    DROP_AS_EVIDENCE,
    EVIDENCE,
    FLOOD_NOTE_S,
    MAX_HOPS,
    MESH_CONDUCT,
    MESH_FLOOD,
    READ,
    SUMMARY_TTL_S,
    Allowance,
    Conduct,
    MeshState,
    accept_summary,
    allow,
    cool_down_left,
    flood_rate,
    forget_router,
    is_admission_evidence,
    is_evidence,
    is_newer,
    make_summary,
    next_hop,
    record_refusal,
    set_link,
)


def summary(router: str, seq: int = 1, links=None, workloads=None) -> Summary:
    """Links and workloads given in milliseconds, stored in microseconds as on the wire."""
    return Summary(
        router,
        seq,
        {k: int(v * 1_000) for k, v in (links or {}).items()},
        {k: int(v * 1_000) for k, v in (workloads or {}).items()},
    )


def mesh(me: str, links: dict[str, float], *summaries: Summary, now: float = 0.0) -> MeshState:
    state = MeshState(me)
    for router, rtt in links.items():
        state = set_link(state, router, rtt)
    for item in summaries:
        state = accept_summary(state, item, now)
    return state


def test_next_hop__direct_neighbour_serving__chosen():
    state = mesh("A", {"B": 1.0}, summary("B", workloads={"mm": 5.0}))
    route = next_hop(state, "mm", now=0.0)
    assert (route.next_hop, route.destination) == ("B", "B")
    assert route.cost_ms == 6.0


def test_next_hop__nobody_serves__none():
    state = mesh("A", {"B": 1.0}, summary("B", workloads={"echo": 1.0}))
    assert next_hop(state, "mm", now=0.0) is None


def test_next_hop__cheapest_of_latency_plus_load():
    state = mesh(
        "A",
        {"B": 1.0, "C": 20.0},
        summary("B", workloads={"mm": 50.0}),  # near but loaded: 51
        summary("C", workloads={"mm": 5.0}),  # far but idle: 25
    )
    assert next_hop(state, "mm", now=0.0).destination == "C"


def test_next_hop__two_hops__first_hop_is_neighbour():
    state = mesh(
        "A",
        {"B": 2.0},
        summary("B", links={"A": 2.0, "C": 3.0}),
        summary("C", links={"B": 3.0}, workloads={"mm": 1.0}),
    )
    route = next_hop(state, "mm", now=0.0)
    assert (route.next_hop, route.destination, route.cost_ms) == ("B", "C", 6.0)


def test_next_hop__shorter_path_over_more_hops_wins():
    state = mesh(
        "A",
        {"B": 1.0, "D": 30.0},
        summary("B", links={"C": 1.0}),
        summary("C", links={"D": 1.0}),
        summary("D", workloads={"mm": 1.0}),
    )
    route = next_hop(state, "mm", now=0.0)
    assert (route.next_hop, route.destination, route.cost_ms) == ("B", "D", 4.0)


def test_next_hop__visited_routers_never_entered():
    state = mesh(
        "B",
        {"A": 1.0, "C": 1.0},
        summary("A", workloads={"mm": 1.0}),
        summary("C", workloads={"mm": 9.0}),
    )
    assert next_hop(state, "mm", now=0.0).destination == "A"
    # The request came from A: sending it back would be a loop.
    assert next_hop(state, "mm", now=0.0, visited=["A"]).destination == "C"
    assert next_hop(state, "mm", now=0.0, visited=["A", "C"]) is None


def test_next_hop__path_through_visited_router__not_used():
    state = mesh(
        "B",
        {"A": 1.0},
        summary("A", links={"C": 1.0}),
        summary("C", workloads={"mm": 1.0}),
    )
    assert next_hop(state, "mm", now=0.0, visited=["A"]) is None


def test_next_hop__hop_limit():
    chain = [f"R{i}" for i in range(MAX_HOPS + 2)]
    summaries = [summary(chain[i], links={chain[i + 1]: 1.0}) for i in range(1, len(chain) - 1)]
    summaries.append(summary(chain[-1], workloads={"mm": 1.0}))
    state = mesh(chain[0], {chain[1]: 1.0}, *summaries)
    assert next_hop(state, "mm", now=0.0) is None


def test_next_hop__stale_summary__ignored():
    state = mesh("A", {"B": 1.0}, summary("B", workloads={"mm": 1.0}), now=0.0)
    assert next_hop(state, "mm", now=SUMMARY_TTL_S) is not None
    assert next_hop(state, "mm", now=SUMMARY_TTL_S + 0.1) is None


def test_next_hop__neighbour_without_link__unreachable():
    state = mesh("A", {}, summary("B", workloads={"mm": 1.0}))
    assert next_hop(state, "mm", now=0.0) is None


def test_accept__older_or_own_summary__ignored():
    state = mesh("A", {"B": 1.0}, summary("B", seq=5, workloads={"mm": 1.0}))
    assert accept_summary(state, summary("B", seq=4), 1.0) is state
    assert accept_summary(state, summary("A", seq=99), 1.0) is state
    newer = accept_summary(state, summary("B", seq=6), 1.0)
    assert next_hop(newer, "mm", now=1.0) is None


def test_forget__router_and_link_removed():
    state = forget_router(mesh("A", {"B": 1.0}, summary("B", workloads={"mm": 1.0})), "B")
    assert not state.links and not state.summaries


def test_make_summary__microseconds_and_sorted():
    s = make_summary("A", 3, {"C": 2.5, "B": 1.0}, {"mm": 0.25})
    assert s == Summary("A", 3, {"B": 1_000, "C": 2_500}, {"mm": 250})
    assert list(s.links) == ["B", "C"]


def test_accept__replay_after_forget__ignored():
    state = mesh("A", {"B": 1.0}, summary("B", seq=5, workloads={"mm": 1.0}))
    state = forget_router(state, "B")
    assert accept_summary(state, summary("B", seq=5), 2.0) is state
    assert accept_summary(state, summary("B", seq=4), 2.0) is state
    assert not is_newer(state, summary("B", seq=5))
    assert is_newer(state, summary("B", seq=6))
    assert "B" in accept_summary(state, summary("B", seq=6), 2.0).summaries


def test_accept__remembered_seqs_bounded_but_held_ones_kept(monkeypatch):
    monkeypatch.setattr("offchain.routers.mesh.MAX_REMEMBERED", 3)
    state = mesh("A", {}, summary("H", seq=9))
    for name in ("P", "Q", "R", "S"):
        state = forget_router(accept_summary(state, summary(name, seq=1), 0.0), name)
    assert set(state.seen) == {"H", "R", "S"}


# ---------------------------------------------------------------- neighbours' conduct

FORGED = "summary-wrong-signer"


def policy(**changes) -> ConductPolicy:
    """Return the mesh's conduct policy with ``changes``."""
    return replace(MESH_CONDUCT, **changes)


def strikes(
    conduct: Conduct, neighbour: str, times, reason: str = FORGED
) -> tuple[Conduct, list[bool]]:
    """Feed one refusal per time; return the conduct and, per refusal, whether it cut off."""
    cuts = []
    for t in times:
        conduct, cut = record_refusal(conduct, neighbour, "0xB", reason, t)
        cuts.append(cut)
    return conduct, cuts


def test_conduct__limit_pieces_of_evidence_within_window__cut_off_once():
    conduct = Conduct(policy(strikes=3, window_s=10.0, cool_down_s=60.0))
    assert strikes(conduct, "B", [0.0, 1.0, 2.0, 3.0])[1] == [False, False, True, False]


def test_conduct__evidence_spread_beyond_window__never_cut_off():
    conduct = Conduct(policy(strikes=3, window_s=10.0))
    assert not any(strikes(conduct, "B", [0.0, 6.0, 12.0, 18.0, 24.0])[1])
    # Two within the window at any time; a third within 10 s of the second-last cuts.
    assert strikes(conduct, "B", [0.0, 6.0, 12.0, 13.0])[1] == [False, False, False, True]


def test_conduct__benign_refusals__never_counted():
    conduct = Conduct(policy(strikes=2))
    for reason in BENIGN:
        after, cuts = strikes(conduct, "B", [0.0] * 50, reason)
        assert not any(cuts)
        assert after is conduct


def test_conduct__every_refusal_reason_is_classified():
    assert EVIDENCE | BENIGN == {*signing.REASONS, MESH_FLOOD}
    assert not EVIDENCE & BENIGN
    for reason in ("summary-unstaked-origin", "summary-expired-binding"):
        assert not is_evidence(reason)
    for reason in ("summary-wrong-signer", "summary-bad-signature", "summary-bad-binding"):
        assert is_evidence(reason)


def test_conduct__evidence_counted_per_neighbour():
    conduct = Conduct(policy(strikes=2))
    conduct, cut_b = record_refusal(conduct, "B", "0xB", FORGED, 0.0)
    conduct, cut_c = record_refusal(conduct, "C", "0xC", FORGED, 0.0)
    assert not cut_b and not cut_c
    conduct, cut_c = record_refusal(conduct, "C", "0xC", FORGED, 1.0)
    assert cut_c
    assert cool_down_left(conduct, "C", 1.0) > 0
    assert cool_down_left(conduct, "B", 1.0) == 0.0


def test_conduct__cut_off__peer_id_and_address_banned_until_cool_down_ends():
    cool_down_s = MESH_CONDUCT.cool_down_s
    conduct = Conduct(policy(strikes=1, cool_down_s=cool_down_s))
    conduct, cut = record_refusal(conduct, "B", "0xB", FORGED, 100.0)
    assert cut
    for key in ("B", "0xB"):  # a new peer id bound to the same address is refused too
        assert cool_down_left(conduct, key, 100.0) == cool_down_s
        assert cool_down_left(conduct, key, 100.0 + cool_down_s - 1) == 1.0
        assert cool_down_left(conduct, key, 100.0 + cool_down_s) == 0.0
    assert cool_down_left(conduct, "someone-else", 100.0) == 0.0


def test_conduct__after_cool_down__fresh_start_and_expired_bans_forgotten():
    conduct = Conduct(policy(strikes=2, window_s=10.0, cool_down_s=5.0))
    conduct, cuts = strikes(conduct, "B", [0.0, 1.0])
    assert cuts == [False, True]
    assert "B" not in conduct.strikes
    # Back after the cool-down: the evidence before the cut does not count again.
    conduct, cut = record_refusal(conduct, "B", "0xB", FORGED, 7.0)
    assert not cut and cool_down_left(conduct, "B", 7.0) == 0.0
    conduct, cut = record_refusal(conduct, "C", "0xC", FORGED, 7.0)
    conduct, cut = record_refusal(conduct, "C", "0xC", FORGED, 8.0)
    assert cut and set(conduct.banned) == {"C", "0xC"}  # B's lapsed ban was dropped


def test_conduct__stale_strikes_of_quiet_neighbours_forgotten():
    conduct = Conduct(policy(strikes=5, window_s=10.0))
    conduct, _ = record_refusal(conduct, "B", "0xB", FORGED, 0.0)
    conduct, _ = record_refusal(conduct, "C", "0xC", FORGED, 20.0)
    assert set(conduct.strikes) == {"C"}


def test_conduct__evidence_during_cool_down__not_counted():
    conduct = Conduct(policy(strikes=1, window_s=10.0, cool_down_s=5.0))
    conduct, cut = record_refusal(conduct, "B", "0xB", FORGED, 0.0)
    assert cut
    # Summaries still in flight on its other link: the ban is not extended, nor a cut repeated.
    after, cut = record_refusal(conduct, "B", "0xB", FORGED, 1.0)
    assert not cut and after is conduct
    assert cool_down_left(after, "B", 1.0) == 4.0


def test_conduct__many_neighbours__memory_bounded_by_max_tracked():
    conduct = Conduct(policy(strikes=2, max_tracked=10))
    for i in range(100):
        conduct, _ = record_refusal(conduct, f"P{i}", f"0x{i}", FORGED, 0.0)
    assert set(conduct.strikes) == {f"P{i}" for i in range(90, 100)}
    conduct = Conduct(policy(strikes=1, max_tracked=10))
    for i in range(100):
        conduct, _ = record_refusal(conduct, f"P{i}", f"0x{i}", FORGED, 0.0)
    # Keys, not neighbours: the last five cut off, by peer id and by address.
    assert set(conduct.banned) == {key for i in range(95, 100) for key in (f"P{i}", f"0x{i}")}


def test_conduct__same_rule_as_the_stream_boundary():
    # Both records weigh strikes with ``net.conduct.strike``; for the same policy and the same
    # refusals they cut off at the same moments.
    rule = policy(strikes=3, window_s=10.0, cool_down_s=5.0)
    times = [0.0, 4.0, 11.0, 12.0, 13.0, 15.0, 19.0, 20.0, 21.0, 22.0, 40.0]
    peers = PeerConduct(rule)
    assert strikes(Conduct(rule), "B", times)[1] == [peers.strike("B", t) for t in times]


def test_conduct__defaults_are_the_stated_constants():
    conduct = Conduct()
    assert conduct.policy == MESH_CONDUCT
    assert (conduct.policy.strikes, conduct.policy.window_s, conduct.policy.cool_down_s) == (
        5,
        60.0,
        600.0,
    )
    with pytest.raises(ValueError):
        Conduct(policy(strikes=0))


def test_flood_rate__base_plus_four_per_origin_and_interval__flooding_is_evidence():
    assert flood_rate(500.0, 0, 1.0) == 500.0
    assert flood_rate(500.0, 100, 1.0) == 900.0
    assert flood_rate(50.0, 10, 0.2) == 250.0  # shorter intervals send more
    assert is_evidence(MESH_FLOOD)


def test_allow__fresh_link__a_full_burst_then_drops_with_evidence_once_a_second():
    allowance = Allowance(last=0.0)
    verdicts = []
    for _ in range(6):  # rate 2: a burst of 4
        allowance, verdict = allow(allowance, 2.0, 0.0)
        verdicts.append(verdict)
    assert verdicts == [READ, READ, READ, READ, DROP_AS_EVIDENCE, DROP]
    allowance, verdict = allow(allowance, 2.0, 0.4)  # 0.8 of a token: still flooding
    assert verdict == DROP
    allowance, verdict = allow(allowance, 2.0, 0.6)  # a token back
    assert verdict == READ
    allowance, verdict = allow(allowance, 2.0, 0.7)  # flooding, noted 0.7 s ago
    assert verdict == DROP
    allowance, verdict = allow(allowance, 2.0, 0.9)  # flooding, noted 0.9 s ago
    assert verdict == DROP
    allowance, verdict = allow(allowance, 2.0, 1.0)
    assert verdict == READ
    allowance, verdict = allow(allowance, 2.0, 1.1)  # flooding, noted 1.1 s ago
    assert verdict == DROP_AS_EVIDENCE
    _, verdict = allow(Allowance(last=0.0, tokens=0.0, noted=0.0), 2.0, FLOOD_NOTE_S)
    assert verdict == READ  # refilled over the second


@given(
    rate=st.floats(1.0, 1_000.0),
    gaps=st.lists(st.floats(0.0, 0.1), min_size=1, max_size=300),
)
def test_allow__never_more_than_the_burst_plus_the_rate_over_time(rate, gaps):
    allowance = Allowance(last=0.0)
    now, read = 0.0, 0
    for gap in gaps:
        now += gap
        allowance, verdict = allow(allowance, rate, now)
        read += verdict == READ
        assert 0 <= allowance.tokens <= int(2 * rate)
    assert read <= int(2 * rate) + rate * now + 1e-6


def test_is_admission_evidence__summary_evidence_and_our_own_summary__not_benign_ones():
    assert is_admission_evidence(signing.NOT_OWN_SUMMARY)
    assert all(is_admission_evidence(reason) for reason in EVIDENCE)
    assert not any(is_admission_evidence(reason) for reason in BENIGN)
