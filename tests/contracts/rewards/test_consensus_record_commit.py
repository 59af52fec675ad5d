"""ConsensusReward.record_commit: books a commit's reward in two slots, flat in signer count."""

import ape

from tests.contracts.helpers import single_event
from tests.contracts.rewards.helpers import EMC, REWARD_PER_COMMIT, bitmap_of


def test_record_commit__funded__books_reward(wired_consensus_reward, record, vset_harness):
    receipt = record(7, 2, [0, 2], 30)
    assert wired_consensus_reward.commit_record(7) == (REWARD_PER_COMMIT, 0b101, 30, 2)
    assert wired_consensus_reward.owed() == REWARD_PER_COMMIT
    assert wired_consensus_reward.total_booked() == REWARD_PER_COMMIT
    assert wired_consensus_reward.available() == 99 * REWARD_PER_COMMIT
    log = single_event(receipt, wired_consensus_reward.CommitRecorded)
    assert (log.height, log.epoch, log.signers_bitmap, log.signer_power) == (7, 2, 0b101, 30)
    assert (log.reward, log.owed) == (REWARD_PER_COMMIT, REWARD_PER_COMMIT)


def test_record_commit__balance_below_reward__books_what_is_left(
    consensus_reward, deployer, vset_harness, token, record
):
    # record's fixture funded 100 rewards; book them all, then the pot is empty.
    for height in range(1, 101):
        record(height, 0, [0], 1)
    receipt = record(101, 0, [0], 1)
    log = single_event(receipt, consensus_reward.CommitRecorded)
    assert (log.reward, log.owed) == (0, 100 * REWARD_PER_COMMIT)
    token.transfer(consensus_reward, EMC, sender=deployer)
    log = single_event(record(102, 0, [0], 1), consensus_reward.CommitRecorded)
    assert (log.reward, log.owed) == (EMC, 100 * REWARD_PER_COMMIT + EMC)
    assert consensus_reward.available() == 0


def test_record_commit__not_consensus__reverts(wired_consensus_reward, stranger):
    with ape.reverts("reward: caller is not consensus"):
        wired_consensus_reward.record_commit(1, 0, 1, 1, sender=stranger)


def test_record_commit__same_height_twice__reverts(wired_consensus_reward, record):
    record(5, 0, [0], 1)
    with ape.reverts("reward: height already recorded"):
        record(5, 0, [1], 1)


def test_record_commit__bad_fields__revert(wired_consensus_reward, vset_harness, deployer):
    def call(bitmap, power, epoch=0):
        return vset_harness.record_commit(
            wired_consensus_reward, 1, epoch, bitmap, power, sender=deployer
        )

    with ape.reverts("reward: bad bitmap"):
        call(0, 1)
    with ape.reverts("reward: bad bitmap"):
        call(1 << 128, 1)
    with ape.reverts("reward: bad signer power"):
        call(1, 0)
    with ape.reverts("reward: bad signer power"):
        call(1, 2**128)
    with ape.reverts("reward: epoch too large"):
        call(1, 1, 2**128)


def test_record_commit__gas_flat_in_signer_count(wired_consensus_reward, record):
    # No per-signer storage: 1 signer and 128 signers cost the same but for calldata bytes.
    record(1, 0, [0], 10)  # first booking: owed and totals go from zero
    one = record(2, 0, [0], 10).gas_used
    full = record(3, 0, range(128), 10 * 128).gas_used
    assert abs(full - one) < 16 * 32
    assert wired_consensus_reward.commit_record(3)[1] == bitmap_of(range(128))
