"""GPUComputeReward.fund_emission: anyone adds EMC to the emission pool."""

import ape

from tests.contracts.helpers import single_event
from tests.contracts.rewards.helpers import EMC


def test_fund_emission__approved__adds_to_pool(gpu_reward, token, fund, stranger):
    fund(stranger, 30 * EMC)
    token.approve(gpu_reward, 30 * EMC, sender=stranger)
    gpu_reward.fund_emission(10 * EMC, sender=stranger)
    receipt = gpu_reward.fund_emission(20 * EMC, sender=stranger)
    assert gpu_reward.emission_pool() == 30 * EMC
    assert token.balanceOf(gpu_reward) == 30 * EMC
    assert token.balanceOf(stranger) == 0
    assert gpu_reward.backing() == 0
    log = single_event(receipt, gpu_reward.EmissionFunded)
    assert (log.funder, log.amount, log.emission_pool) == (stranger.address, 20 * EMC, 30 * EMC)


def test_fund_emission__zero__reverts(gpu_reward, stranger):
    with ape.reverts("reward: zero amount"):
        gpu_reward.fund_emission(0, sender=stranger)


def test_fund_emission__not_approved__reverts(gpu_reward, fund, stranger):
    fund(stranger, EMC)
    with ape.reverts("erc20: insufficient allowance"):
        gpu_reward.fund_emission(EMC, sender=stranger)


def test_fund_emission__plain_transfer__backs_rewards_not_pool(gpu_reward, token, deployer):
    token.transfer(gpu_reward, 2 * EMC, sender=deployer)
    assert gpu_reward.emission_pool() == 0
    assert gpu_reward.backing() == 2 * EMC
