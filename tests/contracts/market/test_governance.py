"""ComputeMarket governance: wiring consensus and the reward contract once, fee, treasury, delay."""

import ape
import pytest

from tests.contracts.helpers import single_event
from tests.contracts.market.helpers import MARKET_FEE_BPS, WITHDRAW_DELAY


def test_constructor__parameters__readable(market, token, sockets, treasury, deployer):
    assert (market.token(), market.sockets()) == (token.address, sockets.address)
    assert (market.treasury(), market.fee_bps(), market.withdraw_delay()) == (
        treasury.address,
        MARKET_FEE_BPS,
        WITHDRAW_DELAY,
    )
    assert market.owner() == deployer.address
    assert market.consensus() == market.reward_contract() == ape.utils.ZERO_ADDRESS


def test_constructor__fee_too_high__reverts(project, deployer, token, sockets, treasury):
    with ape.reverts("market: fee too high"):
        deployer.deploy(project.ComputeMarket, token, sockets, treasury, 1_001, WITHDRAW_DELAY)


def test_set_consensus__owner_once__then_reverts(market, deployer, consensus, stranger):
    receipt = market.set_consensus(consensus, sender=deployer)
    assert single_event(receipt, market.ConsensusSet).consensus == consensus.address
    assert market.consensus() == consensus.address
    with ape.reverts("market: consensus already set"):
        market.set_consensus(stranger, sender=deployer)


def test_set_reward_contract__owner_once__then_reverts(market, deployer, reward_sink, stranger):
    receipt = market.set_reward_contract(reward_sink, sender=deployer)
    assert single_event(receipt, market.RewardContractSet).reward_contract == reward_sink.address
    with ape.reverts("market: reward contract already set"):
        market.set_reward_contract(stranger, sender=deployer)


@pytest.mark.parametrize("setter", ["set_consensus", "set_reward_contract", "set_treasury"])
def test_address_setters__zero_address__revert(market, deployer, setter):
    with ape.reverts("market: zero address"):
        getattr(market, setter)(ape.utils.ZERO_ADDRESS, sender=deployer)


@pytest.mark.parametrize(
    "call",
    [
        ("set_consensus", "a"),
        ("set_reward_contract", "a"),
        ("set_fee", 1),
        ("set_treasury", "a"),
        ("set_withdraw_delay", 5),
    ],
)
def test_setters__not_owner__revert(market, stranger, call):
    name, value = call
    with ape.reverts("ownable: caller is not the owner"):
        getattr(market, name)(stranger if value == "a" else value, sender=stranger)


def test_set_fee__within_cap__changes_and_emits(market, deployer):
    receipt = market.set_fee(1_000, sender=deployer)
    assert single_event(receipt, market.FeeChanged).fee_bps == 1_000
    assert market.fee_bps() == 1_000
    with ape.reverts("market: fee too high"):
        market.set_fee(1_001, sender=deployer)


def test_set_treasury__owner__changes_and_emits(market, deployer, stranger):
    receipt = market.set_treasury(stranger, sender=deployer)
    assert single_event(receipt, market.TreasuryChanged).treasury == stranger.address
    assert market.treasury() == stranger.address


def test_set_withdraw_delay__owner__changes_and_emits(market, deployer):
    receipt = market.set_withdraw_delay(3_600, sender=deployer)
    assert single_event(receipt, market.WithdrawDelayChanged).seconds == 3_600
    assert market.withdraw_delay() == 3_600


def test_set_withdraw_delay__unbounded_freeze_or_zero__reverts(market, deployer):
    """An unbounded withdraw delay froze escrow."""
    with ape.reverts("market: delay out of bounds"):
        market.set_withdraw_delay(market.MAX_WITHDRAW_DELAY() + 1, sender=deployer)
    with ape.reverts("market: delay out of bounds"):
        market.set_withdraw_delay(0, sender=deployer)
    market.set_withdraw_delay(market.MAX_WITHDRAW_DELAY(), sender=deployer)
    market.set_withdraw_delay(market.MIN_WITHDRAW_DELAY(), sender=deployer)
    assert market.withdraw_delay() == 1
