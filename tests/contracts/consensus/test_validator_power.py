"""Validator power stays backed by stake: a member of the signing set cannot withdraw, seats are
held (not used up) and go to the larger stake."""

import ape
import pytest

from tests.contracts.consensus.system import EMC, add_validator, deploy_system, make_commit, submit
from tests.contracts.helpers import single_event

UNBONDING = 60  # deploy_system's unbonding period


@pytest.fixture
def system(project, chain, accounts):
    deployer = accounts[0]
    system = deploy_system(project, chain, deployer, epoch_length=2)
    for i in range(4):
        add_validator(system, deployer, accounts[10 + i], 10_000 * EMC, f"power{i}".encode())
    system.consensus.bootstrap(sender=deployer)
    return system


def test_withdraw__member_exits_and_keeps_signing__reverts_until_set_rotates(
    system, chain, accounts
):
    """The exit-with-power attack: unstake, wait out unbonding, withdraw, keep signing."""
    leaving = system.validators[3][0]
    system.staking.request_unstake(10_000 * EMC, sender=leaving)
    chain.pending_timestamp += UNBONDING
    assert system.consensus.is_current_member(leaving) is True
    with ape.reverts("staking: in the current validator set"):
        system.staking.withdraw(sender=leaving)
    # Its stake stays slashable while epoch 0's set (it included) signs.
    assert system.staking.pending_withdrawal(leaving) == 10_000 * EMC
    submit(system, make_commit(1), [0, 1, 3], accounts[1])
    submit(system, make_commit(2), [0, 1, 3], accounts[1])  # boundary: epoch 1 without it
    assert system.consensus.is_current_member(leaving) is False
    receipt = system.staking.withdraw(sender=leaving)
    assert single_event(receipt, system.staking.Withdrawn).amount == 10_000 * EMC


def test_withdraw__borrowed_power_staked_before_boundary__locked_while_set_signs(
    system, chain, accounts
):
    """Borrowed power: stake just before the boundary commit, leave right after it."""
    deployer, borrower = accounts[0], accounts[14]
    add_validator(system, deployer, borrower, 10_000 * EMC, b"borrower")
    submit(system, make_commit(1), [0, 1, 2], accounts[1])
    submit(system, make_commit(2), [0, 1, 2], accounts[1])  # installs epoch 1 with the borrower
    assert system.consensus.is_current_member(borrower) is True
    system.staking.request_unstake(10_000 * EMC, sender=borrower)
    chain.pending_timestamp += UNBONDING
    with ape.reverts("staking: in the current validator set"):
        system.staking.withdraw(sender=borrower)


def test_withdraw__validator_outside_the_set__pays_after_unbonding(system, chain, accounts):
    """A validator that joined mid-epoch and leaves before the boundary never signed."""
    late = accounts[14]
    add_validator(system, accounts[0], late, 10_000 * EMC, b"late")
    system.staking.request_unstake(10_000 * EMC, sender=late)
    chain.pending_timestamp += UNBONDING
    assert single_event(system.staking.withdraw(sender=late), system.staking.Withdrawn).amount


def test_request_unstake__full_exit__frees_the_seat(system):
    """Seats are held, not used up: leaving gives the seat back (no append-only cap)."""
    staking = system.staking
    leaving = system.validators[0][0]
    assert staking.validator_count() == 4
    assert staking.seat(leaving) == 1
    receipt = staking.request_unstake(10_000 * EMC, sender=leaving)
    assert single_event(receipt, staking.SeatLeft).account == leaving.address
    assert staking.validator_count() == 3
    assert staking.seat(leaving) == 0
    # The last candidate moved into the freed seat.
    moved = system.validators[3][0]
    assert staking.validator_at(0) == moved.address
    assert staking.seat(moved) == 1


def test_take_seat__returning_validator_with_key__seated_again(system, accounts):
    staking, token, deployer = system.staking, system.token, accounts[0]
    leaving = system.validators[0][0]
    staking.request_unstake(10_000 * EMC, sender=leaving)
    with ape.reverts("staking: not a staked validator"):
        staking.take_seat(sender=leaving)
    token.transfer(leaving, 10_000 * EMC, sender=deployer)
    token.approve(staking, 10_000 * EMC, sender=leaving)
    staking.stake(1, 10_000 * EMC, sender=leaving)
    receipt = staking.take_seat(sender=leaving)
    assert single_event(receipt, staking.SeatTaken).account == leaving.address
    assert staking.validator_count() == 4
    with ape.reverts("staking: already seated"):
        staking.take_seat(sender=leaving)


def test_take_seat__staked_without_key__reverts(system, accounts):
    staking, token, keyless = system.staking, system.token, accounts[15]
    token.transfer(keyless, 10_000 * EMC, sender=accounts[0])
    token.approve(staking, 10_000 * EMC, sender=keyless)
    staking.stake(1, 10_000 * EMC, sender=keyless)
    with ape.reverts("staking: no key registered"):
        staking.take_seat(sender=keyless)


@pytest.mark.slow
def test_register_validator__seats_full_of_parked_capital__larger_stake_takes_the_smallest_seat(
    project, chain, accounts
):
    """Entry closed for good: the append-only list of 256 ever filled and nobody could join."""
    deployer = accounts[0]
    system = deploy_system(project, chain, deployer)
    staking = system.staking
    seats = staking.MAX_VALIDATORS()
    parked = []
    for i in range(seats):
        account = accounts.generate_test_account()
        deployer.transfer(account, 10**18)
        stake = (10_000 + (0 if i == 7 else 1)) * EMC  # seat 7 holds the smallest stake
        add_validator(system, deployer, account, stake, f"parked{i}".encode())
        parked.append(account)
    assert staking.validator_count() == seats
    newcomer = accounts.generate_test_account()
    deployer.transfer(newcomer, 10**18)
    with ape.reverts("staking: stake below the smallest seat"):
        add_validator(system, deployer, newcomer, 10_000 * EMC, b"newcomer")
    add_validator(system, deployer, newcomer, 20_000 * EMC, b"newcomer")
    assert staking.validator_count() == seats
    assert staking.validator_at(7) == newcomer.address
    assert staking.seat(parked[7]) == 0
    # The evicted validator comes back only with a larger stake than the smallest seat.
    with ape.reverts("staking: stake below the smallest seat"):
        staking.take_seat(sender=parked[7])
