"""ConsensusReward.claimable: what `claim` would pay, skipping what it could not."""

from tests.contracts.rewards.helpers import REWARD_PER_COMMIT


def test_claimable__matches_claim_then_drops_to_zero(
    wired_consensus_reward, store_set, record, validators
):
    a, b, c = validators[:3]
    store_set(0, [(a, 2), (b, 3), (c, 5)])
    record(1, 0, [0, 1, 2], 10)
    record(2, 0, [1, 2], 8)
    expected = REWARD_PER_COMMIT * 5 // 10 + REWARD_PER_COMMIT * 5 // 8
    assert wired_consensus_reward.claimable(c, [1, 2], [2, 2]) == expected
    assert wired_consensus_reward.claim([1, 2], [2, 2], sender=c).return_value == expected
    assert wired_consensus_reward.claimable(c, [1, 2], [2, 2]) == 0


def test_claimable__skips_invalid_entries(wired_consensus_reward, store_set, record, validators):
    a, b, c = validators[:3]
    store_set(0, [(a, 2), (b, 3), (c, 5)])
    record(1, 0, [1, 2], 8)
    # Not recorded, not a signer, someone else's index, index beyond the bitmap.
    assert wired_consensus_reward.claimable(a, [9, 1, 1, 1], [0, 0, 1, 300]) == 0
    assert wired_consensus_reward.claimable(b, [9, 1, 1], [0, 0, 1]) == REWARD_PER_COMMIT * 3 // 8


def test_claimable__consensus_not_set__zero(consensus_reward, validators):
    assert consensus_reward.claimable(validators[0], [1], [0]) == 0
