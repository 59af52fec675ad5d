"""Staking governance: the slasher wired once, minimums and the unbonding period."""

import ape

from tests.contracts.helpers import MIN_COMPUTE_STAKE, ROLE_COMPUTE, ROLE_VALIDATOR, single_event


def test_set_slasher__owner__sets_once(staking, deployer, stranger, user):
    receipt = staking.set_slasher(stranger, sender=deployer)
    assert staking.slasher() == stranger.address
    assert single_event(receipt, staking.SlasherSet).slasher == stranger.address
    with ape.reverts("staking: slasher already set"):
        staking.set_slasher(user, sender=deployer)


def test_set_slasher__not_owner__reverts(staking, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        staking.set_slasher(stranger, sender=stranger)


def test_set_slasher__zero_address__reverts(staking, deployer):
    with ape.reverts("staking: zero address"):
        staking.set_slasher("0x0000000000000000000000000000000000000000", sender=deployer)


def test_set_min_stake__owner__changes_and_logs(staking, deployer):
    receipt = staking.set_min_stake(ROLE_COMPUTE, 2 * MIN_COMPUTE_STAKE, sender=deployer)
    assert staking.min_stake(ROLE_COMPUTE) == 2 * MIN_COMPUTE_STAKE
    log = single_event(receipt, staking.MinStakeChanged)
    assert (log.role, log.amount) == (ROLE_COMPUTE, 2 * MIN_COMPUTE_STAKE)


def test_set_min_stake__combined_flags__reverts(staking, deployer):
    with ape.reverts("staking: unknown role"):
        staking.set_min_stake(ROLE_COMPUTE | ROLE_VALIDATOR, 1, sender=deployer)


def test_set_min_stake__not_owner__reverts(staking, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        staking.set_min_stake(ROLE_COMPUTE, 0, sender=stranger)


def test_set_unbonding_period__owner__changes_and_logs(staking, deployer):
    receipt = staking.set_unbonding_period(7 * 24 * 3600, sender=deployer)
    assert staking.unbonding_period() == 7 * 24 * 3600
    assert single_event(receipt, staking.UnbondingPeriodChanged).seconds == 7 * 24 * 3600


def test_set_unbonding_period__not_owner__reverts(staking, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        staking.set_unbonding_period(0, sender=stranger)


def test_set_unbonding_period__zero_to_escape_slashing__reverts(staking, deployer):
    """An unbonding period of 0 let a validator leave before evidence could land."""
    with ape.reverts("staking: unbonding period out of bounds"):
        staking.set_unbonding_period(0, sender=deployer)
    with ape.reverts("staking: unbonding period out of bounds"):
        staking.set_unbonding_period(staking.MIN_UNBONDING_PERIOD() - 1, sender=deployer)
    with ape.reverts("staking: unbonding period out of bounds"):
        staking.set_unbonding_period(staking.MAX_UNBONDING_PERIOD() + 1, sender=deployer)
    staking.set_unbonding_period(staking.MAX_UNBONDING_PERIOD(), sender=deployer)


def test_set_min_stake__zero_or_beyond_the_bound__reverts(staking, deployer):
    with ape.reverts("staking: minimum stake out of bounds"):
        staking.set_min_stake(ROLE_VALIDATOR, 0, sender=deployer)
    with ape.reverts("staking: minimum stake out of bounds"):
        staking.set_min_stake(ROLE_VALIDATOR, staking.MAX_MIN_STAKE() + 1, sender=deployer)
    staking.set_min_stake(ROLE_VALIDATOR, staking.MAX_MIN_STAKE(), sender=deployer)
