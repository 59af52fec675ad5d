"""ConsensusReward booking: sealed heights are booked lazily, in one step, at the current rate,
as far as the balance pays in full; a commit itself costs this contract nothing."""

import ape

from tests.contracts.helpers import single_event
from tests.contracts.rewards.helpers import EMC, REWARD_PER_COMMIT, bitmap_of


def test_book__funded__books_every_sealed_height(wired_consensus_reward, record, deployer):
    record(1, 0, [0], 10)
    record(2, 2, [0, 2], 30)
    assert wired_consensus_reward.bookable_through() == 2
    receipt = wired_consensus_reward.book(sender=deployer)
    assert wired_consensus_reward.booked_through() == 2
    assert wired_consensus_reward.commit_record(2) == (REWARD_PER_COMMIT, 0b101, 30, 2)
    assert wired_consensus_reward.owed() == 2 * REWARD_PER_COMMIT
    assert wired_consensus_reward.total_booked() == 2 * REWARD_PER_COMMIT
    assert wired_consensus_reward.available() == 98 * REWARD_PER_COMMIT
    log = single_event(receipt, wired_consensus_reward.RewardsBooked)
    assert (log.booked_through, log.reward_per_commit, log.owed) == (
        2,
        REWARD_PER_COMMIT,
        2 * REWARD_PER_COMMIT,
    )


def test_book__nothing_new_sealed__books_nothing(wired_consensus_reward, record, deployer):
    record(1, 0, [0], 1)
    wired_consensus_reward.book(sender=deployer)
    receipt = wired_consensus_reward.book(sender=deployer)
    assert list(wired_consensus_reward.RewardsBooked.from_receipt(receipt)) == []
    assert wired_consensus_reward.owed() == REWARD_PER_COMMIT


def test_book__balance_short_of_every_height__books_only_what_it_pays_in_full(
    consensus_reward, wired_consensus_reward, record, token, deployer
):
    # The fixture funded 100 heights' worth; 101 are sealed.
    record(101, 0, [0], 1)
    wired_consensus_reward.book(sender=deployer)
    assert wired_consensus_reward.booked_through() == 100
    assert wired_consensus_reward.owed() == 100 * REWARD_PER_COMMIT
    assert wired_consensus_reward.available() == 0
    # A part of one height's reward books nothing: no height is booked at less than the rate.
    token.transfer(consensus_reward, REWARD_PER_COMMIT - 1, sender=deployer)
    assert wired_consensus_reward.bookable_through() == 100
    token.transfer(consensus_reward, 1, sender=deployer)
    wired_consensus_reward.book(sender=deployer)
    assert wired_consensus_reward.booked_through() == 101
    assert wired_consensus_reward.owed() == 101 * REWARD_PER_COMMIT


def test_set_reward_per_commit__books_first__earlier_heights_keep_their_rate(
    wired_consensus_reward, record, deployer
):
    record(1, 0, [0], 1)
    record(2, 0, [0], 1)
    receipt = wired_consensus_reward.set_reward_per_commit(2 * REWARD_PER_COMMIT, sender=deployer)
    assert single_event(receipt, wired_consensus_reward.RewardPerCommitChanged).from_height == 3
    assert wired_consensus_reward.booked_through() == 2
    record(3, 0, [0], 1)
    wired_consensus_reward.book(sender=deployer)
    assert [wired_consensus_reward.commit_record(h)[0] for h in (1, 2, 3)] == [
        REWARD_PER_COMMIT,
        REWARD_PER_COMMIT,
        2 * REWARD_PER_COMMIT,
    ]
    assert wired_consensus_reward.owed() == 4 * REWARD_PER_COMMIT
    # A second change before any new booking replaces the first (same first height).
    wired_consensus_reward.set_reward_per_commit(EMC, sender=deployer)
    wired_consensus_reward.set_reward_per_commit(0, sender=deployer)
    assert wired_consensus_reward.rate_change_count() == 3
    record(4, 0, [0], 1)
    wired_consensus_reward.book(sender=deployer)
    assert wired_consensus_reward.commit_record(4)[0] == 0
    assert wired_consensus_reward.booked_through() == 4


def test_book__gas_flat_in_heights_and_signers(wired_consensus_reward, record, deployer):
    # No per-height or per-signer storage: one height and fifty cost the same.
    record(1, 0, [0], 10)
    wired_consensus_reward.book(sender=deployer)  # first booking: owed goes from zero
    record(2, 0, [0], 10)
    one = wired_consensus_reward.book(sender=deployer).gas_used
    record(52, 0, range(128), 10 * 128)
    fifty = wired_consensus_reward.book(sender=deployer).gas_used
    assert abs(fifty - one) < 200
    assert wired_consensus_reward.commit_record(52)[1] == bitmap_of(range(128))


def test_claim__with_a_booked_height__books_the_rest_first(
    wired_consensus_reward, record, store_set, validators
):
    a = validators[0]
    store_set(0, [(a, 1)])
    record(1, 0, [0], 1)
    record(2, 0, [0], 1)
    receipt = wired_consensus_reward.claim([1], [0], sender=a)
    assert single_event(receipt, wired_consensus_reward.RewardsBooked).booked_through == 2
    assert wired_consensus_reward.owed() == REWARD_PER_COMMIT
    with ape.reverts("reward: already claimed"):
        wired_consensus_reward.claim([1], [0], sender=a)
