"""Staking.slash: only the slasher, never more than the stake, reaches pending withdrawals."""

import ape
import pytest

from tests.contracts.helpers import MIN_ROUTER_STAKE, ROLE_ROUTER, single_event


@pytest.fixture
def slasher(staking, deployer, stranger):
    staking.set_slasher(stranger, sender=deployer)
    return stranger


def test_slash__by_slasher__takes_and_pays_slasher(staking, token, stake_as, slasher, router_owner):
    stake_as(router_owner, ROLE_ROUTER, MIN_ROUTER_STAKE)
    receipt = staking.slash(router_owner, 300, "double sign", sender=slasher)
    assert staking.staked(router_owner) == MIN_ROUTER_STAKE - 300
    assert token.balanceOf(slasher) == 300
    assert token.balanceOf(staking) == staking.total_staked() + staking.total_pending()
    assert not staking.is_active(router_owner, ROLE_ROUTER)
    log = single_event(receipt, staking.Slashed)
    assert (log.account, log.amount, log.requested, log.reason) == (
        router_owner.address,
        300,
        300,
        "double sign",
    )


def test_slash__more_than_stake__capped(staking, token, stake_as, slasher, router_owner):
    stake_as(router_owner, ROLE_ROUTER, MIN_ROUTER_STAKE)
    receipt = staking.slash(router_owner, 10 * MIN_ROUTER_STAKE, "fraud", sender=slasher)
    assert staking.staked(router_owner) == 0
    assert token.balanceOf(slasher) == MIN_ROUTER_STAKE
    log = single_event(receipt, staking.Slashed)
    assert (log.amount, log.requested) == (MIN_ROUTER_STAKE, 10 * MIN_ROUTER_STAKE)


def test_slash__reaches_pending_withdrawal(staking, stake_as, slasher, router_owner):
    stake_as(router_owner, ROLE_ROUTER, MIN_ROUTER_STAKE)
    staking.request_unstake(MIN_ROUTER_STAKE, sender=router_owner)
    staking.slash(router_owner, 400, "evidence", sender=slasher)
    assert staking.pending_withdrawal(router_owner) == MIN_ROUTER_STAKE - 400
    assert staking.total_pending() == MIN_ROUTER_STAKE - 400


def test_slash__not_slasher__reverts(staking, stake_as, slasher, deployer, router_owner):
    stake_as(router_owner, ROLE_ROUTER, MIN_ROUTER_STAKE)
    with ape.reverts("staking: caller is not the slasher"):
        staking.slash(router_owner, 1, "x", sender=deployer)


def test_slash__before_slasher_wired__reverts_for_everyone(
    staking, stake_as, deployer, router_owner
):
    stake_as(router_owner, ROLE_ROUTER, MIN_ROUTER_STAKE)
    with ape.reverts("staking: caller is not the slasher"):
        staking.slash(router_owner, 1, "x", sender=deployer)


def test_slash__zero__reverts(staking, slasher, router_owner):
    with ape.reverts("staking: zero amount"):
        staking.slash(router_owner, 0, "x", sender=slasher)
