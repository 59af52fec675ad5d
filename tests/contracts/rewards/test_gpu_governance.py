"""GPUComputeReward governance: consensus wiring, emission rate and router share."""

import ape

from tests.contracts.helpers import single_event
from tests.contracts.rewards.helpers import EMC, EMISSION_PER_COMMIT


def test_constructor__defaults(gpu_reward, token, deployer):
    assert gpu_reward.token() == token.address
    assert gpu_reward.owner() == deployer.address
    assert gpu_reward.emission_per_commit() == EMISSION_PER_COMMIT
    assert gpu_reward.router_share_bps() == 1_000 == gpu_reward.DEFAULT_ROUTER_SHARE_BPS()
    assert gpu_reward.consensus() == ape.utils.ZERO_ADDRESS
    assert gpu_reward.rewards_total() == gpu_reward.root_count() == 0


def test_set_consensus__owner_once__then_reverts(gpu_reward, deployer, root_poster, stranger):
    receipt = gpu_reward.set_consensus(root_poster, sender=deployer)
    assert gpu_reward.consensus() == root_poster.address
    assert single_event(receipt, gpu_reward.ConsensusSet).consensus == root_poster.address
    with ape.reverts("reward: consensus already set"):
        gpu_reward.set_consensus(stranger, sender=deployer)


def test_set_consensus__not_owner__reverts(gpu_reward, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        gpu_reward.set_consensus(stranger, sender=stranger)


def test_set_consensus__zero_address__reverts(gpu_reward, deployer):
    with ape.reverts("reward: zero address"):
        gpu_reward.set_consensus(ape.utils.ZERO_ADDRESS, sender=deployer)


def test_set_emission_per_commit__owner__changes_with_event(gpu_reward, deployer):
    receipt = gpu_reward.set_emission_per_commit(3 * EMC, sender=deployer)
    assert gpu_reward.emission_per_commit() == 3 * EMC
    assert single_event(receipt, gpu_reward.EmissionPerCommitChanged).amount == 3 * EMC


def test_set_emission_per_commit__not_owner__reverts(gpu_reward, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        gpu_reward.set_emission_per_commit(1, sender=stranger)


def test_set_router_share_bps__owner__changes_with_event(gpu_reward, deployer):
    receipt = gpu_reward.set_router_share_bps(9_000, sender=deployer)
    assert gpu_reward.router_share_bps() == 9_000
    assert single_event(receipt, gpu_reward.RouterShareChanged).bps == 9_000
    assert gpu_reward.split_price(1_000, False) == (0, 900, 100), "the node's part can reach 0"


def test_set_router_share_bps__with_issuer_share_above_100_percent__reverts(gpu_reward, deployer):
    assert gpu_reward.ISSUER_SHARE_BPS() == 1_000
    with ape.reverts("reward: shares above 100%"):
        gpu_reward.set_router_share_bps(9_001, sender=deployer)


def test_set_router_share_bps__not_owner__reverts(gpu_reward, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        gpu_reward.set_router_share_bps(500, sender=stranger)


def test_set_emission_per_commit__beyond_the_bound__reverts(gpu_reward, deployer):
    """Emission could be changed at will: now at most MAX_EMISSION_PER_COMMIT."""
    bound = gpu_reward.MAX_EMISSION_PER_COMMIT()
    assert bound == 1_000 * EMC
    with ape.reverts("reward: emission too large"):
        gpu_reward.set_emission_per_commit(bound + 1, sender=deployer)
    gpu_reward.set_emission_per_commit(bound, sender=deployer)
    assert gpu_reward.emission_per_commit() == bound
