"""ConsensusReward.claim: a signer proves its set index and takes its stake-weighted share."""

import ape

from tests.contracts.helpers import single_event
from tests.contracts.rewards.helpers import REWARD_PER_COMMIT


def test_claim__signer__paid_share_by_power(
    wired_consensus_reward, store_set, record, token, validators
):
    a, b, c, d = validators
    store_set(0, [(a, 10), (b, 20), (c, 30), (d, 40)])
    record(1, 0, [1, 2, 3], 90)
    receipt = wired_consensus_reward.claim([1], [2], sender=c)
    share = REWARD_PER_COMMIT * 30 // 90
    assert receipt.return_value == share
    assert token.balanceOf(c) == share
    assert wired_consensus_reward.owed() == REWARD_PER_COMMIT - share
    assert wired_consensus_reward.total_claimed() == share
    assert wired_consensus_reward.has_claimed(c, 1)
    log = single_event(receipt, wired_consensus_reward.RewardClaimed)
    assert (log.account, log.amount, list(log.heights)) == (c.address, share, [1])


def test_claim__all_signers__sum_to_reward_within_dust(
    wired_consensus_reward, store_set, record, token, validators
):
    powers = [7, 11, 13, 17]
    store_set(0, list(zip(validators, powers, strict=True)))
    record(1, 0, [0, 1, 2, 3], sum(powers))
    paid = 0
    for index, account in enumerate(validators):
        paid += wired_consensus_reward.claim([1], [index], sender=account).return_value
    assert REWARD_PER_COMMIT - len(validators) < paid <= REWARD_PER_COMMIT
    assert wired_consensus_reward.owed() == REWARD_PER_COMMIT - paid


def test_claim__several_heights_and_epochs__pays_each(
    wired_consensus_reward, store_set, record, token, validators
):
    a, b, c, d = validators
    store_set(0, [(a, 10), (b, 10), (c, 10)])
    store_set(1, [(d, 5), (c, 15)], seed_base=10)
    record(1, 0, [0, 2], 20)
    record(2, 0, [0, 1, 2], 30)
    record(3, 1, [0, 1], 20)
    receipt = wired_consensus_reward.claim([1, 2, 3], [2, 2, 1], sender=c)
    expected = REWARD_PER_COMMIT // 2 + REWARD_PER_COMMIT // 3 + REWARD_PER_COMMIT * 15 // 20
    assert token.balanceOf(c) == expected
    log = single_event(receipt, wired_consensus_reward.RewardClaimed)
    assert (log.account, log.amount, list(log.heights)) == (c.address, expected, [1, 2, 3])


def test_claim__same_height_again__reverts(wired_consensus_reward, store_set, record, validators):
    a, b = validators[:2]
    store_set(0, [(a, 1), (b, 1)])
    record(1, 0, [0, 1], 2)
    wired_consensus_reward.claim([1], [0], sender=a)
    with ape.reverts("reward: already claimed"):
        wired_consensus_reward.claim([1], [0], sender=a)
    with ape.reverts("reward: already claimed"):
        wired_consensus_reward.claim([1, 1], [1, 1], sender=b)


def test_claim__index_of_another_member__reverts(
    wired_consensus_reward, store_set, record, validators
):
    a, b = validators[:2]
    store_set(0, [(a, 1), (b, 1)])
    record(1, 0, [0, 1], 2)
    with ape.reverts("reward: index is not the caller"):
        wired_consensus_reward.claim([1], [1], sender=a)


def test_claim__did_not_sign__reverts(wired_consensus_reward, store_set, record, validators):
    a, b, c = validators[:3]
    store_set(0, [(a, 1), (b, 1), (c, 1)])
    record(1, 0, [0, 1], 2)
    with ape.reverts("reward: not a signer"):
        wired_consensus_reward.claim([1], [2], sender=c)
    with ape.reverts("reward: not a signer"):
        wired_consensus_reward.claim([1], [200], sender=c)


def test_claim__height_not_sealed__reverts(wired_consensus_reward, store_set, record, validators):
    a = validators[0]
    store_set(0, [(a, 1)])
    record(1, 0, [0], 1)
    with ape.reverts("reward: height not booked"):
        wired_consensus_reward.claim([2], [0], sender=a)
    with ape.reverts("reward: height not booked"):
        wired_consensus_reward.claim([0], [0], sender=a)


def test_claim__bad_arrays__revert(wired_consensus_reward, validators):
    with ape.reverts("reward: length mismatch"):
        wired_consensus_reward.claim([1, 2], [0], sender=validators[0])
    with ape.reverts("reward: nothing to claim"):
        wired_consensus_reward.claim([], [], sender=validators[0])


def test_claim__consensus_not_set__reverts(consensus_reward, validators):
    with ape.reverts("reward: consensus not set"):
        consensus_reward.claim([1], [0], sender=validators[0])


def test_claim__unfunded_height__waits_for_funding_then_pays_in_full(
    consensus_reward, deployer, vset_harness, store_set, token, validators
):
    a = validators[0]
    consensus_reward.set_consensus(vset_harness, sender=deployer)
    store_set(0, [(a, 1)])
    vset_harness.seal(1, 0, 1, 1, sender=deployer)
    with ape.reverts("reward: height not booked"):
        consensus_reward.claim([1], [0], sender=a)
    assert consensus_reward.claimable(a, [1], [0]) == 0
    token.transfer(consensus_reward, REWARD_PER_COMMIT, sender=deployer)
    assert consensus_reward.claimable(a, [1], [0]) == REWARD_PER_COMMIT
    receipt = consensus_reward.claim([1], [0], sender=a)
    assert receipt.return_value == REWARD_PER_COMMIT
    assert consensus_reward.has_claimed(a, 1)
    assert consensus_reward.owed() == 0


def test_claim__epoch_without_a_set__reverts(wired_consensus_reward, record, validators):
    record(1, 9, [0], 1)
    with ape.reverts("reward: unknown validator set"):
        wired_consensus_reward.claim([1], [0], sender=validators[0])
    assert wired_consensus_reward.claimable(validators[0], [1], [0]) == 0
