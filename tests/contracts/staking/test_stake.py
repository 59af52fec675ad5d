"""Staking.stake: roles as bit flags and minimum stakes."""

import ape

from tests.contracts.helpers import (
    MIN_COMPUTE_STAKE,
    MIN_ROUTER_STAKE,
    ROLE_COMPUTE,
    ROLE_ROUTER,
    ROLE_VALIDATOR,
    single_event,
)


def test_stake__at_minimum__records_stake_role_and_event(staking, token, stake_as, node_owner):
    receipt = stake_as(node_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    assert staking.staked(node_owner) == MIN_COMPUTE_STAKE
    assert staking.roles(node_owner) == ROLE_COMPUTE
    assert staking.total_staked() == MIN_COMPUTE_STAKE
    assert token.balanceOf(staking) == MIN_COMPUTE_STAKE
    assert staking.is_active(node_owner, ROLE_COMPUTE)
    log = single_event(receipt, staking.Staked)
    assert (log.account, log.roles, log.amount, log.total) == (
        node_owner.address,
        ROLE_COMPUTE,
        MIN_COMPUTE_STAKE,
        MIN_COMPUTE_STAKE,
    )


def test_stake__below_minimum__reverts(staking, token, fund, node_owner):
    fund(node_owner, MIN_COMPUTE_STAKE)
    token.approve(staking, MIN_COMPUTE_STAKE, sender=node_owner)
    with ape.reverts("staking: stake below minimum"):
        staking.stake(ROLE_COMPUTE, MIN_COMPUTE_STAKE - 1, sender=node_owner)


def test_stake__combined_roles__need_sum_of_minimums(staking, token, fund, router_owner):
    both = ROLE_ROUTER | ROLE_COMPUTE
    needed = MIN_ROUTER_STAKE + MIN_COMPUTE_STAKE
    assert staking.required_stake(both) == needed
    fund(router_owner, needed)
    token.approve(staking, needed, sender=router_owner)
    with ape.reverts("staking: stake below minimum"):
        staking.stake(both, needed - 1, sender=router_owner)
    staking.stake(both, needed, sender=router_owner)
    assert staking.is_active(router_owner, ROLE_ROUTER)
    assert staking.is_active(router_owner, ROLE_COMPUTE)
    assert not staking.is_active(router_owner, ROLE_VALIDATOR)


def test_stake__adding_a_role_later__tops_up(staking, stake_as, router_owner):
    stake_as(router_owner, ROLE_ROUTER, MIN_ROUTER_STAKE)
    stake_as(router_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    assert staking.roles(router_owner) == ROLE_ROUTER | ROLE_COMPUTE
    assert staking.staked(router_owner) == MIN_ROUTER_STAKE + MIN_COMPUTE_STAKE


def test_stake__adding_a_role_without_top_up__reverts(staking, stake_as, router_owner):
    stake_as(router_owner, ROLE_ROUTER, MIN_ROUTER_STAKE)
    with ape.reverts("staking: stake below minimum"):
        stake_as(router_owner, ROLE_VALIDATOR, 1)


def test_stake__unknown_role__reverts(staking, user):
    with ape.reverts("staking: unknown role"):
        staking.stake(8, MIN_COMPUTE_STAKE, sender=user)
    with ape.reverts("staking: unknown role"):
        staking.stake(0, MIN_COMPUTE_STAKE, sender=user)


def test_stake__zero_amount__reverts(staking, user):
    with ape.reverts("staking: zero amount"):
        staking.stake(ROLE_COMPUTE, 0, sender=user)


def test_stake__without_allowance__reverts(staking, fund, user):
    fund(user, MIN_COMPUTE_STAKE)
    with ape.reverts("erc20: insufficient allowance"):
        staking.stake(ROLE_COMPUTE, MIN_COMPUTE_STAKE, sender=user)


def test_stake__blacklisted__reverts(staking, token, fund, deployer, node_owner):
    staking.set_blacklisted(node_owner, True, sender=deployer)
    fund(node_owner, MIN_COMPUTE_STAKE)
    token.approve(staking, MIN_COMPUTE_STAKE, sender=node_owner)
    with ape.reverts("staking: blacklisted"):
        staking.stake(ROLE_COMPUTE, MIN_COMPUTE_STAKE, sender=node_owner)


def test_is_active__minimum_raised_above_stake__inactive(staking, stake_as, deployer, node_owner):
    stake_as(node_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    staking.set_min_stake(ROLE_COMPUTE, MIN_COMPUTE_STAKE + 1, sender=deployer)
    assert not staking.is_active(node_owner, ROLE_COMPUTE)
