"""Governance through snekmate's timelock controller: owner calls wait out the minimum delay."""

import ape
import pytest

from tests.contracts.market.helpers import MARKET_FEE_BPS, WITHDRAW_DELAY

DELAY = 60
ZERO = b"\x00" * 32


@pytest.fixture
def governed(project, deployer, token, sockets, treasury):
    """A market owned by a timelock whose proposer and executor is the deployer."""
    timelock = deployer.deploy(
        project.Timelock, DELAY, [deployer.address], [deployer.address], ape.utils.ZERO_ADDRESS
    )
    market = deployer.deploy(
        project.ComputeMarket, token, sockets, treasury, MARKET_FEE_BPS, WITHDRAW_DELAY
    )
    market.transfer_ownership(timelock, sender=deployer)
    return timelock, market


def test_execute__owner_call_before_the_delay__reverts_then_runs(governed, deployer, chain):
    timelock, market = governed
    payload = market.set_withdraw_delay.as_transaction(3_600, sender=deployer).data
    timelock.schedule(market, 0, payload, ZERO, ZERO, DELAY, sender=deployer)
    with ape.reverts("timelock_controller: operation is not ready"):
        timelock.execute(market, 0, payload, ZERO, ZERO, sender=deployer)
    chain.pending_timestamp += DELAY
    timelock.execute(market, 0, payload, ZERO, ZERO, sender=deployer)
    assert market.withdraw_delay() == 3_600


def test_schedule__shorter_than_the_minimum_delay__reverts(governed, deployer):
    timelock, market = governed
    payload = market.set_fee.as_transaction(0, sender=deployer).data
    with ape.reverts("timelock_controller: insufficient delay"):
        timelock.schedule(market, 0, payload, ZERO, ZERO, DELAY - 1, sender=deployer)


def test_owner_call__deployer_directly__reverts(governed, deployer):
    """The deployer no longer owns anything: every power goes through the delay."""
    _, market = governed
    with ape.reverts("ownable: caller is not the owner"):
        market.set_fee(0, sender=deployer)


def test_execute__bounded_parameter_out_of_range__reverts_even_through_the_timelock(
    governed, deployer, chain
):
    timelock, market = governed
    payload = market.set_withdraw_delay.as_transaction(10**9, sender=deployer).data
    timelock.schedule(market, 0, payload, ZERO, ZERO, DELAY, sender=deployer)
    chain.pending_timestamp += DELAY
    with ape.reverts("market: delay out of bounds"):
        timelock.execute(market, 0, payload, ZERO, ZERO, sender=deployer)
    assert market.withdraw_delay() == WITHDRAW_DELAY
