"""Staking.withdraw: only after the unbonding period."""

import ape

from tests.contracts.helpers import MIN_COMPUTE_STAKE, ROLE_COMPUTE, UNBONDING_PERIOD, single_event


def test_withdraw__after_unbonding__pays_back(staking, token, chain, stake_as, node_owner):
    stake_as(node_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    staking.request_unstake(MIN_COMPUTE_STAKE, sender=node_owner)
    chain.pending_timestamp += UNBONDING_PERIOD
    receipt = staking.withdraw(sender=node_owner)
    assert token.balanceOf(node_owner) == MIN_COMPUTE_STAKE
    assert staking.pending_withdrawal(node_owner) == 0
    assert staking.total_pending() == 0
    assert token.balanceOf(staking) == 0
    log = single_event(receipt, staking.Withdrawn)
    assert (log.account, log.amount) == (node_owner.address, MIN_COMPUTE_STAKE)


def test_withdraw__before_unbonding__reverts(staking, chain, stake_as, node_owner):
    stake_as(node_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    staking.request_unstake(MIN_COMPUTE_STAKE, sender=node_owner)
    chain.pending_timestamp += UNBONDING_PERIOD - 5
    with ape.reverts("staking: still unbonding"):
        staking.withdraw(sender=node_owner)


def test_withdraw__nothing_pending__reverts(staking, stake_as, node_owner):
    stake_as(node_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    with ape.reverts("staking: nothing to withdraw"):
        staking.withdraw(sender=node_owner)


def test_withdraw__twice__second_reverts(staking, chain, stake_as, node_owner):
    stake_as(node_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    staking.request_unstake(MIN_COMPUTE_STAKE, sender=node_owner)
    chain.pending_timestamp += UNBONDING_PERIOD
    staking.withdraw(sender=node_owner)
    with ape.reverts("staking: nothing to withdraw"):
        staking.withdraw(sender=node_owner)
