"""ConsensusReward governance: consensus wiring and the reward per commit."""

import ape

from tests.contracts.helpers import single_event
from tests.contracts.rewards.helpers import EMC, REWARD_PER_COMMIT


def test_constructor__defaults(consensus_reward, token, deployer):
    assert consensus_reward.token() == token.address
    assert consensus_reward.owner() == deployer.address
    assert consensus_reward.reward_per_commit() == REWARD_PER_COMMIT
    assert consensus_reward.owed() == consensus_reward.total_booked() == 0


def test_constructor__reward_too_large__reverts(project, deployer, token):
    with ape.reverts("reward: reward too large"):
        deployer.deploy(project.ConsensusReward, token, 1_000 * EMC + 1)


def test_set_consensus__owner_once__then_reverts(
    consensus_reward, deployer, vset_harness, stranger
):
    receipt = consensus_reward.set_consensus(vset_harness, sender=deployer)
    assert consensus_reward.consensus() == vset_harness.address
    assert single_event(receipt, consensus_reward.ConsensusSet).consensus == vset_harness.address
    with ape.reverts("reward: consensus already set"):
        consensus_reward.set_consensus(stranger, sender=deployer)


def test_set_consensus__not_owner_or_zero__reverts(consensus_reward, deployer, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        consensus_reward.set_consensus(stranger, sender=stranger)
    with ape.reverts("reward: zero address"):
        consensus_reward.set_consensus(ape.utils.ZERO_ADDRESS, sender=deployer)


def test_set_reward_per_commit__owner__changes_with_event(consensus_reward, deployer):
    receipt = consensus_reward.set_reward_per_commit(5 * EMC, sender=deployer)
    assert consensus_reward.reward_per_commit() == 5 * EMC
    log = single_event(receipt, consensus_reward.RewardPerCommitChanged)
    assert (log.amount, log.from_height) == (5 * EMC, 1)


def test_set_reward_per_commit__too_large_or_not_owner__reverts(
    consensus_reward, deployer, stranger
):
    with ape.reverts("reward: reward too large"):
        consensus_reward.set_reward_per_commit(1_000 * EMC + 1, sender=deployer)
    consensus_reward.set_reward_per_commit(1_000 * EMC, sender=deployer)
    with ape.reverts("ownable: caller is not the owner"):
        consensus_reward.set_reward_per_commit(1, sender=stranger)
