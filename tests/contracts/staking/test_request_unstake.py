"""Staking.request_unstake: unbonding starts, minimums hold for partial exits."""

import ape

from tests.contracts.helpers import (
    MIN_COMPUTE_STAKE,
    MIN_ROUTER_STAKE,
    ROLE_COMPUTE,
    ROLE_ROUTER,
    UNBONDING_PERIOD,
    single_event,
)


def test_request_unstake__everything__clears_roles_and_starts_clock(
    staking, chain, stake_as, node_owner
):
    stake_as(node_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    receipt = staking.request_unstake(MIN_COMPUTE_STAKE, sender=node_owner)
    unlock = chain.blocks[receipt.block_number].timestamp + UNBONDING_PERIOD
    assert staking.staked(node_owner) == 0
    assert staking.roles(node_owner) == 0
    assert staking.pending_withdrawal(node_owner) == MIN_COMPUTE_STAKE
    assert staking.withdrawable_at(node_owner) == unlock
    assert (staking.total_staked(), staking.total_pending()) == (0, MIN_COMPUTE_STAKE)
    log = single_event(receipt, staking.UnstakeRequested)
    assert (log.account, log.amount, log.remaining, log.roles, log.withdrawable_at) == (
        node_owner.address,
        MIN_COMPUTE_STAKE,
        0,
        0,
        unlock,
    )


def test_request_unstake__partial_above_minimum__keeps_roles(staking, stake_as, router_owner):
    stake_as(router_owner, ROLE_ROUTER, MIN_ROUTER_STAKE + 50)
    staking.request_unstake(50, sender=router_owner)
    assert staking.roles(router_owner) == ROLE_ROUTER
    assert staking.is_active(router_owner, ROLE_ROUTER)


def test_request_unstake__partial_below_minimum__reverts(staking, stake_as, router_owner):
    stake_as(router_owner, ROLE_ROUTER, MIN_ROUTER_STAKE)
    with ape.reverts("staking: stake below minimum"):
        staking.request_unstake(1, sender=router_owner)


def test_request_unstake__more_than_staked__reverts(staking, stake_as, node_owner):
    stake_as(node_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    with ape.reverts("staking: exceeds stake"):
        staking.request_unstake(MIN_COMPUTE_STAKE + 1, sender=node_owner)


def test_request_unstake__zero__reverts(staking, node_owner):
    with ape.reverts("staking: zero amount"):
        staking.request_unstake(0, sender=node_owner)


def test_request_unstake__second_request__adds_and_restarts_clock(
    staking, chain, stake_as, router_owner
):
    stake_as(router_owner, ROLE_ROUTER, MIN_ROUTER_STAKE + 20)
    staking.request_unstake(10, sender=router_owner)
    chain.pending_timestamp += 30
    receipt = staking.request_unstake(10, sender=router_owner)
    assert staking.pending_withdrawal(router_owner) == 20
    assert staking.withdrawable_at(router_owner) == (
        chain.blocks[receipt.block_number].timestamp + UNBONDING_PERIOD
    )
