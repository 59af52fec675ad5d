"""Fixtures for the reward contracts: deployed once per session, wired per test.

Names differ from the session fixtures of `tests/contracts/conftest.py` on purpose: Ape's test
isolation breaks when a function-scoped fixture shadows a session-scoped one.
"""

import pytest

from tests.contracts.rewards.helpers import (
    EMISSION_PER_COMMIT,
    REWARD_PER_COMMIT,
    bitmap_of,
    set_data,
)


@pytest.fixture(scope="session")
def root_poster(accounts):
    """Stands in for ComputeConsensus toward GPUComputeReward: only it may update the root."""
    return accounts[4]


@pytest.fixture(scope="session")
def earners(accounts):
    """Compute node owners and routers that earn rewards."""
    return list(accounts[5:9])


@pytest.fixture(scope="session")
def gpu_reward(project, deployer, token):
    return deployer.deploy(project.GPUComputeReward, token, EMISSION_PER_COMMIT)


@pytest.fixture
def wired_gpu_reward(gpu_reward, deployer, root_poster):
    """GPUComputeReward with its consensus set to `root_poster`."""
    gpu_reward.set_consensus(root_poster, sender=deployer)
    return gpu_reward


@pytest.fixture
def post_root(wired_gpu_reward, token, deployer, root_poster):
    """Bill `billed` EMC in (as ComputeMarket.settle does), then install `tree`'s root."""

    def _post_root(tree, billed=None):
        billed = tree.total - wired_gpu_reward.rewards_total() if billed is None else billed
        if billed:
            token.transfer(wired_gpu_reward, billed, sender=deployer)
        return wired_gpu_reward.update_root(tree.root, tree.total, sender=root_poster)

    return _post_root


@pytest.fixture(scope="session")
def vset_harness(project, deployer):
    """Builds validator-set data contracts and stands in for ComputeConsensus."""
    return deployer.deploy(project.ValidatorSetHarness)


@pytest.fixture(scope="session")
def consensus_reward(project, deployer, token):
    return deployer.deploy(project.ConsensusReward, token, REWARD_PER_COMMIT)


@pytest.fixture
def wired_consensus_reward(consensus_reward, deployer, vset_harness, token):
    """ConsensusReward wired to the harness, funded with 100 commits' worth of EMC."""
    consensus_reward.set_consensus(vset_harness, sender=deployer)
    token.transfer(consensus_reward, 100 * REWARD_PER_COMMIT, sender=deployer)
    return consensus_reward


@pytest.fixture
def store_set(vset_harness, deployer):
    """Store epoch `epoch`'s set of (account, power) members: store_set(epoch, members)."""

    def _store_set(epoch, members, seed_base=1):
        data = set_data(vset_harness, [(str(a), p) for a, p in members], seed_base)
        vset_harness.store(epoch, data, sender=deployer)
        return vset_harness.validator_set(epoch)

    return _store_set


@pytest.fixture
def record(wired_consensus_reward, vset_harness, deployer):
    """Seal a height's signers as consensus would: record(height, epoch, signer_indices,
    signer_power). ConsensusReward books it at the next `book` or claim."""

    def _record(height, epoch, indices, signer_power):
        return vset_harness.seal(height, epoch, bitmap_of(indices), signer_power, sender=deployer)

    return _record
