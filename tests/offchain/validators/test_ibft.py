"""The IBFT state machine, driven by hand: one validator, inputs in, effects out.

The network-wide scenarios live in test_sim.py.
"""

import pytest

from offchain.crypto import bls
from offchain.crypto.keys import generate_keypair
from offchain.protocol import ibft_wire as m
from offchain.validators import ibft
from offchain.validators.seals import seal_scheme

H = 1  # the height most tests run at; its proposers are 1, 2, 3, 0 for rounds 0, 1, 2, 3


def accept(net, d, height=H, round_=0, rcs=(), prepares=()):
    """Feed the round's proposal from its proposer; return (value, digest)."""
    p = net.proposer(height, round_)
    value = net.value(p, height, round_)
    d.feed(net.pp(p, height, round_, value, rcs, prepares))
    return value, net.digest(height, value)


def finish_height(net, d, height=H):
    """Take validator ``d`` through a whole round-0 height with honest peers."""
    value, digest = accept(net, d, height)
    peers = net.others(d.index)[:2]
    d.feed(*(net.prepare(i, height, 0, digest) for i in peers))
    d.feed(*(net.commit(i, height, 0, digest) for i in peers))
    return value, digest


def prepares_sent(d, effects=None):
    return [msg.prepare.payload for msg in d.sent(m.PrepareMsg, effects)]


# --- 2. an invalid round-0 proposal ---------------------------------------------------------


def test_invalid_round0_proposal__gets_no_prepare(net, driver):
    d = driver(net, 0)
    bad = b"invalid batch"
    assert d.feed(net.pp(1, H, 0, bad)) == []
    assert d.state.proposal is None
    value, digest = accept(net, d)
    assert prepares_sent(d) == [m.Prepare(H, 0, digest)]


# --- 3 and 4. round changes without a certificate --------------------------------------------


def test_silent_proposer__timer_expires_and_round_change_has_no_certificate(net, driver):
    d = driver(net, 0)
    assert ibft.SetTimer(H, 0, 1.0) in d.effects
    effects = d.timeout(H, 0)
    assert d.state.round == 1
    assert ibft.SetTimer(H, 1, 2.0) in effects
    [rc] = d.sent(m.RoundChangeMsg)
    assert rc.round_change.payload == m.RoundChange(H, 1, None, None)
    assert rc.prepared_value == b"" and rc.prepares == ()


def test_too_few_prepares_before_timeout__round_change_carries_no_certificate(net, driver):
    d = driver(net, 0)
    _, digest = accept(net, d)
    d.feed(net.prepare(1, H, 0, digest))  # with its own: 2 of 4, quorum is 3
    assert d.sent(m.CommitMsg) == []
    d.timeout()
    [rc] = d.sent(m.RoundChangeMsg)
    assert rc.round_change.payload.prepared_round is None
    assert rc.prepares == ()


# --- 5 and 6. the highest prepared value is re-proposed --------------------------------------


def test_prepared_quorum_then_timeout__round_change_carries_the_certificate(net, driver):
    d = driver(net, 0)
    value, digest = accept(net, d)
    d.feed(net.prepare(1, H, 0, digest), net.prepare(2, H, 0, digest))
    assert [c.commit.payload.digest for c in d.sent(m.CommitMsg)] == [digest]
    d.timeout()
    [rc] = d.sent(m.RoundChangeMsg)
    assert rc.round_change.payload == m.RoundChange(H, 1, 0, digest)
    assert rc.prepared_value == value
    assert {p.sender for p in rc.prepares} == {net.keys[i].address for i in (0, 1, 2)}


def test_prepared_quorum_then_timeout__next_proposer_reproposes_highest_prepared_value(net, driver):
    d = driver(net, 3)  # proposer of round 2
    old, new = b"prepared at round 0", b"prepared at round 1"
    d.feed(
        net.rc(0, H, 2, cert=(0, old, [0, 1, 2])),
        net.rc(1, H, 2, cert=(1, new, [0, 1, 3])),
    )
    assert d.state.round == 2  # f+1 round-changes moved it; with its own that is a quorum
    [pp] = d.sent(m.PrePrepareMsg)
    assert pp.proposal.payload == m.Proposal(H, 2, net.digest(H, new))
    assert pp.value == new
    assert {p.payload for p in pp.prepares} == {m.Prepare(H, 1, net.digest(H, new))}
    assert len(pp.round_changes) == 3


def test_round_gt0_proposal_not_the_highest_prepared_value__is_rejected(net, driver):
    d = driver(net, 0)
    old, new = b"prepared at round 0", b"prepared at round 1"
    d.feed(net.rc(1, H, 2, cert=(0, old, [0, 1, 2])), net.rc(2, H, 2, cert=(1, new, [1, 2, 3])))
    assert d.state.round == 2
    rcs = (
        net.signed_rc(1, H, 2, (0, old)),
        net.signed_rc(2, H, 2, (1, new)),
        net.signed_rc(3, H, 2),
    )
    stale = net.signed_prepares([0, 1, 2], H, 0, net.digest(H, old))
    assert d.feed(net.pp(3, H, 2, old, rcs, stale)) == []
    fresh = net.signed_prepares([1, 2, 3], H, 1, net.digest(H, new))
    assert d.feed(net.pp(3, H, 2, b"something else", rcs, fresh)) == []
    d.feed(net.pp(3, H, 2, new, rcs, fresh))
    assert prepares_sent(d) == [m.Prepare(H, 2, net.digest(H, new))]


# --- 7. bad justifications -------------------------------------------------------------------


def _bad_justifications(net, outsider):
    other = b"prepared elsewhere"
    return {
        "missing": ((), ()),
        "under_quorum": ((net.signed_rc(1, H, 1), net.signed_rc(3, H, 1)), ()),
        "duplicate_senders": (
            (net.signed_rc(1, H, 1), net.signed_rc(1, H, 1), net.signed_rc(3, H, 1)),
            (),
        ),
        "non_validator": (
            (
                net.signed_rc(1, H, 1),
                net.signed_rc(3, H, 1),
                net.signed_rc(0, H, 1, None, outsider),
            ),
            (),
        ),
        "wrong_height": (
            (net.signed_rc(1, H, 1), net.signed_rc(3, H, 1), net.signed_rc(0, H + 1, 1)),
            (),
        ),
        "wrong_round": (
            (net.signed_rc(1, H, 1), net.signed_rc(3, H, 1), net.signed_rc(0, H, 2)),
            (),
        ),
        "prepared_claim_without_certificate": (
            (net.signed_rc(1, H, 1, (0, other)), net.signed_rc(3, H, 1), net.signed_rc(0, H, 1)),
            (),
        ),
        "certificate_under_quorum": (
            (net.signed_rc(1, H, 1, (0, other)), net.signed_rc(3, H, 1), net.signed_rc(0, H, 1)),
            net.signed_prepares([1, 3], H, 0, net.digest(H, other)),
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "under_quorum",
        "duplicate_senders",
        "non_validator",
        "wrong_height",
        "wrong_round",
        "prepared_claim_without_certificate",
        "certificate_under_quorum",
    ],
)
def test_round_gt0_proposal_with_bad_justification__is_rejected(net, driver, outsider, case):
    d = driver(net, 0)
    d.timeout(H, 0)
    assert d.state.round == 1
    rcs, prepares = _bad_justifications(net, outsider)[case]
    value = net.value(2, H, 1)
    assert d.feed(net.pp(2, H, 1, value, rcs, prepares)) == []
    assert d.state.proposal is None
    good = (net.signed_rc(1, H, 1), net.signed_rc(3, H, 1), net.signed_rc(0, H, 1))
    d.feed(net.pp(2, H, 1, value, good))
    assert prepares_sent(d) == [m.Prepare(H, 1, net.digest(H, value))]


# --- 8 and 9. who may propose, and only once -------------------------------------------------


def test_proposal_from_the_wrong_proposer__is_rejected(net, driver):
    d = driver(net, 0)
    assert d.feed(net.pp(2, H, 0, net.value(2, H, 0))) == []
    assert d.feed(net.pp(3, H, 0, net.value(3, H, 0))) == []
    value, digest = accept(net, d)
    assert prepares_sent(d) == [m.Prepare(H, 0, digest)]


def test_second_different_proposal_in_the_same_round__is_rejected(net, driver):
    d = driver(net, 0)
    value, digest = accept(net, d)
    assert d.feed(net.pp(1, H, 0, b"a different batch")) == []
    assert d.feed(net.pp(1, H, 0, value)) == []  # the same one again: a duplicate
    assert d.state.proposal.value == value
    # the first proposal still completes
    d.feed(net.prepare(1, H, 0, digest), net.prepare(2, H, 0, digest))
    d.feed(net.commit(1, H, 0, digest), net.commit(2, H, 0, digest))
    assert [(x.height, x.value) for x in d.decisions()] == [(H, value)]


# --- 10 to 13. rounds -------------------------------------------------------------------------


def test_repeated_round_changes_from_one_peer__do_not_trigger_a_change_or_overwrite(net, driver):
    d = driver(net, 0)
    first = net.rc(1, H, 3)
    d.feed(first, first, net.rc(1, H, 3, cert=(0, b"later claim", [1, 2, 3])))
    d.feed(net.rc(1, H, 4), net.rc(1, H, 5), net.rc(1, H, 6))
    assert d.state.round == 0
    assert d.sent(m.RoundChangeMsg, d.all_effects) == []
    kept = d.state.round_changes[3][net.keys[1].address]
    assert kept.round_change.payload.prepared_round is None


def test_f_plus_1_round_changes_for_higher_rounds__move_to_the_lowest_of_them(net, driver):
    d = driver(net, 0)
    d.feed(net.rc(1, H, 5))
    assert d.state.round == 0  # one validator is not f+1 (f = 1 of 4)
    effects = d.feed(net.rc(2, H, 3))
    assert d.state.round == 3
    assert ibft.SetTimer(H, 3, 8.0) in effects
    [rc] = d.sent(m.RoundChangeMsg)
    assert rc.round_change.payload.round == 3


def test_after_round_9_old_round_changes_do_not_move_back_and_abandoned_rounds_cannot_complete(
    net, driver
):
    d = driver(net, 0)
    d.feed(net.rc(1, H, 9), net.rc(2, H, 9))
    assert d.state.round == 9
    d.feed(net.rc(1, H, 4), net.rc(2, H, 4), net.rc(3, H, 4))
    assert d.state.round == 9
    value = net.value(1, H, 4)
    digest = net.digest(H, value)
    rcs = tuple(net.signed_rc(i, H, 4) for i in (1, 2, 3))
    effects = d.feed(
        net.pp(1, H, 4, value, rcs),
        *(net.prepare(i, H, 4, digest) for i in (1, 2, 3)),
        *(net.commit(i, H, 4, digest) for i in (1, 2, 3)),
    )
    assert effects == []
    assert d.state.round == 9 and d.state.height == H


def test_future_round_messages__are_acted_on_only_once_that_round_is_active(net, driver):
    d = driver(net, 0)
    value = net.value(2, H, 1)
    digest = net.digest(H, value)
    rcs = tuple(net.signed_rc(i, H, 1) for i in (1, 2, 3))
    early = d.feed(
        net.pp(2, H, 1, value, rcs), net.prepare(2, H, 1, digest), net.prepare(3, H, 1, digest)
    )
    assert early == [] and d.state.round == 0
    effects = d.timeout(H, 0)
    assert d.state.round == 1
    assert prepares_sent(d, effects) == [m.Prepare(H, 1, digest)]
    assert [c.commit.payload.round for c in d.sent(m.CommitMsg, effects)] == [1]


# --- 14. heights ------------------------------------------------------------------------------


def test_future_height_messages__are_buffered_until_that_height_and_past_ones_dropped(net, driver):
    d = driver(net, 0)
    later = net.value(2, H + 1, 0)
    later_digest = net.digest(H + 1, later)
    early = d.feed(
        net.pp(2, H + 1, 0, later),
        *(net.prepare(i, H + 1, 0, later_digest) for i in (2, 3)),
        *(net.commit(i, H + 1, 0, later_digest) for i in (2, 3)),
    )
    assert early == [] and d.state.height == H
    value, digest = finish_height(net, d)
    assert [(x.height, x.value) for x in d.decisions()] == [(H, value), (H + 1, later)]
    assert d.state.height == H + 2
    assert d.feed(net.prepare(3, H, 0, digest), net.commit(3, H + 1, 0, later_digest)) == []


def test_buffered_round_changes_of_a_future_height__act_once_it_starts(net, driver):
    d = driver(net, 0)
    assert d.feed(net.rc(2, H + 1, 3), net.rc(3, H + 1, 3)) == []
    finish_height(net, d)
    assert (d.state.height, d.state.round) == (H + 1, 3)  # f+1 of them moved it on arrival


def test_future_messages__are_kept_only_within_the_bounds(make_net, driver):
    net = make_net(4, max_future_heights=2, max_buffered_per_sender=3)
    d = driver(net, 0)
    d.feed(net.prepare(1, H + 3, 0, bytes(32)))  # beyond max_future_heights
    assert d.state.buffer == ()
    d.feed(*(net.prepare(1, H + 1, r, bytes(32)) for r in range(5)))
    assert len(d.state.buffer) == 3  # the per-sender bound
    d.feed(net.prepare(2, H + 1, 0, bytes(32)))
    assert len(d.state.buffer) == 4  # another sender has its own share


# --- 15 and 16. what is ignored ---------------------------------------------------------------


def test_messages_from_non_validators__get_no_response(net, driver, outsider):
    d = driver(net, 0)
    finish_height(net, d)
    before = d.state
    value = b"outsider batch"
    digest = net.digest(H + 1, value)
    datas = [
        m.pre_prepare(outsider, H + 1, 0, value, digest),
        m.prepare(outsider, H + 1, 0, digest),
        m.commit(outsider, H + 1, 0, digest, b"seal"),
        m.round_change(outsider, H + 1, 1),
        m.round_change(outsider, H, 1),  # a past height: a validator would get a proof back
    ]
    assert d.feed(*datas) == []
    assert d.state == before
    assert [e.to for e in d.feed(net.rc(3, H, 1)) if isinstance(e, ibft.Send)] == [
        net.keys[3].address
    ]


def test_garbage_bytes_and_unknown_message_types__are_ignored_and_consensus_goes_on(net, driver):
    d = driver(net, 0)
    good = net.prepare(1, H, 0, bytes(32))
    garbage = [
        b"",
        b"\x01",
        bytes(range(256)),
        good[:2] + bytes([0x17]) + good[3:],  # [version, kind, ...] with an unknown kind, 23
        good[:1] + bytes([m.VERSION + 1]) + good[2:],  # unknown version
        good + b"\x00",  # trailing byte
        good[:-1],  # truncated
        good[:40],
        "not bytes",
    ]
    before = d.state
    for data in garbage:
        assert d.feed(data) == []
    assert d.state == before
    value, _ = finish_height(net, d)
    assert [(x.height, x.value) for x in d.decisions()] == [(H, value)]


# --- 17. digests and seals (real BLS) ---------------------------------------------------------


def test_prepares_with_wrong_digest_ignored__and_one_invalid_seal_does_not_block_finalization(
    make_net, driver
):
    net = make_net(4, scheme="bls")
    d = driver(net, 0)
    value, digest = accept(net, d)
    wrong = net.digest(H, b"another batch")
    d.feed(net.prepare(3, H, 0, wrong), net.prepare(1, H, 0, digest))
    assert d.sent(m.CommitMsg) == []  # own + 1 match; 3's wrong digest does not count
    d.feed(net.prepare(2, H, 0, digest))
    [own] = d.sent(m.CommitMsg)
    assert bls.verify(net.seals[0][1], digest, own.commit.payload.seal)
    forged = net.scheme.sign(net.seals[1][0], digest)  # 1's seal, sent as 3's
    assert d.feed(net.commit(3, H, 0, digest, seal=forged)) == []
    assert d.feed(net.commit(1, H, 0, digest)) == []  # a quorum, but 3's seal fails: dropped
    assert net.keys[3].address in d.state.bad_seals
    assert d.feed(net.commit(3, H, 0, digest, seal=forged)) == []  # not taken back
    assert net.keys[3].address not in d.state.commits
    [decision] = [e for e in d.feed(net.commit(2, H, 0, digest)) if isinstance(e, ibft.Decide)]
    assert (decision.height, decision.value, decision.digest) == (H, value, digest)
    signers = [a for a, _ in decision.seals]
    assert signers == [net.keys[i].address for i in (0, 1, 2)]
    aggregate = bls.aggregate_signatures([s for _, s in decision.seals])
    pubkeys = [net.seals[i][1] for i in (0, 1, 2)]
    assert bls.verify_aggregate(pubkeys, digest, aggregate)


# --- the seal lock: never two digests at one height -------------------------------------------


def _lock_then_prepare_another(net, d):
    """Seal value A in round 0, then get prepared on value B in round 1; return both digests."""
    _, sealed = accept(net, d)
    d.feed(net.prepare(1, H, 0, sealed), net.prepare(2, H, 0, sealed))
    d.timeout(H, 0)
    other = net.value(2, H, 1)
    rcs = tuple(net.signed_rc(i, H, 1) for i in (1, 2, 3))  # a quorum that never prepared
    effects = d.feed(net.pp(2, H, 1, other, rcs))
    d.feed(*(net.prepare(i, H, 1, net.digest(H, other)) for i in (1, 2, 3)))
    return sealed, net.digest(H, other), effects


def test_honest_node__never_seals_two_different_digests_at_one_height(net, driver):
    d = driver(net, 0)
    sealed, other, effects = _lock_then_prepare_another(net, d)
    assert prepares_sent(d, effects) == [m.Prepare(H, 1, other)]  # it still helps the round
    for round_ in range(1, 6):  # and across more round changes
        d.timeout(H, round_)
    commits = [c.commit.payload for c in d.sent(m.CommitMsg, d.all_effects)]
    assert {c.digest for c in commits} == {sealed}
    assert d.state.sealed_digest == sealed


def test_seal_lock__survives_a_restart(net, driver):
    d = driver(net, 0)
    _, sealed = accept(net, d)
    d.feed(net.prepare(1, H, 0, sealed), net.prepare(2, H, 0, sealed))
    restarted = driver(net, 0, H, sealed)
    restarted.timeout(H, 0)
    other = net.value(2, H, 1)
    restarted.feed(net.pp(2, H, 1, other, tuple(net.signed_rc(i, H, 1) for i in (1, 2, 3))))
    restarted.feed(*(net.prepare(i, H, 1, net.digest(H, other)) for i in (1, 2, 3)))
    assert restarted.sent(m.CommitMsg, restarted.all_effects) == []


def test_locked_node__still_decides_the_value_a_quorum_committed(net, driver):
    d = driver(net, 0)
    _, other, _ = _lock_then_prepare_another(net, d)
    d.feed(*(net.commit(i, H, 1, other) for i in (1, 2, 3)))
    assert [(x.height, x.digest) for x in d.decisions()] == [(H, other)]


# --- catching up from a decision proof --------------------------------------------------------


def test_lagging_validator__catches_up_from_a_peers_decision_proof(net, driver):
    ahead = driver(net, 0)
    value, _ = finish_height(net, ahead)
    behind = driver(net, 3)
    behind.timeout(H, 0)
    [rc] = [e.data for e in behind.effects if isinstance(e, ibft.Broadcast)]
    [reply] = [e for e in ahead.feed(rc) if isinstance(e, ibft.Send)]
    assert reply.to == net.keys[3].address
    assert ahead.feed(rc) == []  # the same round-change again gets no second reply
    effects = behind.feed(reply.data)
    assert [(x.height, x.value) for x in behind.decisions(effects)] == [(H, value)]
    assert behind.state.height == H + 1


def test_decision_proof_with_an_invalid_seal__is_rejected(net, driver):
    d = driver(net, 3)
    value = net.value(1, H, 0)
    digest = net.digest(H, value)
    seals = {0: None, 1: None, 2: net.scheme.sign(net.seals[0][0], digest)}
    commits = tuple(m.decode(net.commit(i, H, 0, digest, s)).commit for i, s in seals.items())
    assert d.feed(m.encode(m.DecidedMsg(value, commits))) == []
    assert d.state.height == H


def test_decision_proof_under_quorum__is_rejected(net, driver):
    d = driver(net, 3)
    value = net.value(1, H, 0)
    digest = net.digest(H, value)
    commits = tuple(
        m.decode(net.commit(i, H, 0, digest)).commit for i in (0, 1)
    )  # 2 of 4, quorum is 3
    assert d.feed(m.encode(m.DecidedMsg(value, commits))) == []
    assert d.state.height == H


# --- 22. the timer schedule -------------------------------------------------------------------


def test_round_timer__waits_base_times_two_to_the_round_up_to_the_cap(net, driver):
    config = net.configs[0]  # base 1, cap 8
    assert [ibft.round_timeout(config, r) for r in range(7)] == [1, 2, 4, 8, 8, 8, 8]
    assert ibft.round_timeout(config, 10_000) == 8
    with pytest.raises(ValueError):
        ibft.round_timeout(config, -1)
    d = driver(net, 0)
    delays = []
    for r in range(6):
        [timer] = [e for e in d.timeout(H, r) if isinstance(e, ibft.SetTimer)]
        delays.append((timer.round, timer.delay))
    assert delays == [(1, 2), (2, 4), (3, 8), (4, 8), (5, 8), (6, 8)]


def test_stale_timeouts__are_ignored(net, driver):
    d = driver(net, 0)
    d.timeout(H, 0)
    assert d.timeout(H, 0) == [] and d.timeout(H + 1, 1) == []
    assert d.state.round == 1


# --- configuration ----------------------------------------------------------------------------


def test_config__rejects_a_set_without_this_validator_or_with_bad_powers(net, outsider):
    base = net.configs[0]
    with pytest.raises(ibft.ConfigError):
        ibft.Config(net.validators, outsider, None, net.scheme, base.propose)
    zero = (ibft.Validator(net.keys[0].address, 0, b""),) + net.validators[1:]
    with pytest.raises(ibft.ConfigError):
        ibft.Config(zero, net.keys[0], None, net.scheme, base.propose)
    with pytest.raises(ibft.ConfigError):
        ibft.Config(net.validators, net.keys[0], None, net.scheme, base.propose, base_timeout=0)


def test_config__more_validators_than_a_list_may_hold__refused():
    keys = [generate_keypair(f"big-set-{i}".encode()) for i in range(m.MAX_VALIDATORS + 1)]
    validators = tuple(ibft.Validator(k.address, 1, b"k") for k in keys)
    with pytest.raises(ibft.ConfigError, match=str(m.MAX_VALIDATORS)):
        ibft.Config(
            validators=validators,
            keypair=keys[0],
            seal_secret=b"k",
            seal_scheme=seal_scheme("hash"),
            propose=lambda h, r: b"",
        )


def test_quorum__is_weighted_by_voting_power(net):
    heavy = (ibft.Validator(net.keys[0].address, 10, b""),) + net.validators[1:]
    config = ibft.Config(heavy, net.keys[0], None, net.scheme, net.configs[0].propose)
    assert config.quorum == 2 * 13 // 3 + 1 == 9
    assert config.weak_quorum == 13 - 9 + 1
