"""ComputeMarket.settle (the consensus hook) and prove_spent: lazy billing against the latest root.

A commit that bills more than the escrow is refused as a whole when its total exceeds the unbilled
escrow; a root that bills one user beyond that user's escrow is capped when proven (the user loses
its escrow and no more, the excess is recorded as `overbilled`).
"""

import ape
import pytest

from tests.contracts.helpers import EMC, single_event
from tests.contracts.market.helpers import billing_proof, billing_root

DEPOSIT = 50 * EMC


@pytest.fixture
def deposit(token, fund, market):
    def _deposit(account, amount=DEPOSIT):
        fund(account, amount)
        token.approve(market, amount, sender=account)
        market.deposit(amount, sender=account)

    return _deposit


def test_settle__consensus__moves_batch_total_and_records_root(
    wired_market, token, deposit, user, stranger, consensus, reward_sink
):
    market = wired_market
    deposit(user)
    deposit(stranger)
    root = billing_root({user.address: 7 * EMC, stranger.address: 3 * EMC})
    receipt = market.settle(10 * EMC, root, sender=consensus)
    log = single_event(receipt, market.Settled)
    assert (log.commit, log.billing_root, log.billed_total, log.reward_contract) == (
        1,
        root,
        10 * EMC,
        reward_sink.address,
    )
    assert (market.billing_root(), market.commit_count()) == (root, 1)
    assert token.balanceOf(reward_sink) == 10 * EMC
    assert token.balanceOf(market) == market.unbilled_escrow() == 2 * DEPOSIT - 10 * EMC
    assert market.outstanding_billed() == market.total_billed() == 10 * EMC
    assert market.escrow(user) == DEPOSIT, (
        "billing is lazy: escrow changes when the spent is proven"
    )


def test_settle__zero_total__records_root_only(
    wired_market, token, deposit, user, consensus, reward_sink
):
    deposit(user)
    root = billing_root({user.address: 0})
    wired_market.settle(0, root, sender=consensus)
    assert wired_market.billing_root() == root
    assert token.balanceOf(reward_sink) == 0


def test_settle__not_consensus__reverts(wired_market, stranger):
    with ape.reverts("market: caller is not consensus"):
        wired_market.settle(0, b"\x01" * 32, sender=stranger)


def test_settle__consensus_not_wired__reverts(market, consensus):
    with ape.reverts("market: caller is not consensus"):
        market.settle(0, b"\x01" * 32, sender=consensus)


def test_settle__reward_contract_not_wired__reverts(market, deployer, consensus):
    market.set_consensus(consensus, sender=deployer)
    with ape.reverts("market: reward contract not set"):
        market.settle(0, b"\x01" * 32, sender=consensus)


def test_settle__total_beyond_unbilled_escrow__moves_only_the_escrow_and_records_shortfall(
    wired_market, token, deposit, user, consensus, reward_sink
):
    """A sealed commit must execute: the bill is clamped, never reverted."""
    deposit(user)
    wired_market.settle(30 * EMC, billing_root({user.address: 30 * EMC}), sender=consensus)
    receipt = wired_market.settle(
        DEPOSIT - 30 * EMC + 1, billing_root({user.address: DEPOSIT + 1}), sender=consensus
    )
    shortfall = single_event(receipt, wired_market.SettlementShortfall)
    assert (shortfall.commit, shortfall.billed_total, shortfall.moved) == (
        2,
        DEPOSIT - 30 * EMC + 1,
        DEPOSIT - 30 * EMC,
    )
    assert single_event(receipt, wired_market.Settled).billed_total == DEPOSIT - 30 * EMC
    assert wired_market.billing_shortfall() == 1
    assert wired_market.unbilled_escrow() == 0
    assert token.balanceOf(reward_sink) == DEPOSIT
    assert token.balanceOf(wired_market) == 0


def test_settle__root_bills_user_beyond_escrow__capped_when_proven(
    wired_market, token, deposit, user, stranger, consensus
):
    market = wired_market
    deposit(user)
    deposit(stranger)
    spent = {user.address: DEPOSIT + 30 * EMC, stranger.address: 0}
    market.settle(DEPOSIT + 30 * EMC, billing_root(spent), sender=consensus)
    receipt = market.prove_spent(
        user, DEPOSIT + 30 * EMC, billing_proof(spent, user.address), sender=stranger
    )
    log = single_event(receipt, market.SpentProven)
    assert (log.applied, log.overbilled, log.escrow) == (DEPOSIT, 30 * EMC, 0)
    assert market.escrow(user) == 0
    assert market.overbilled(user) == 30 * EMC
    assert market.spent_settled(user) == DEPOSIT + 30 * EMC


# --- prove_spent ---


def test_prove_spent__anyone__applies_spent_to_escrow(
    wired_market, deposit, user, stranger, consensus
):
    market = wired_market
    deposit(user)
    spent = {user.address: 8 * EMC, stranger.address: 0}
    market.settle(8 * EMC, billing_root(spent), sender=consensus)
    receipt = market.prove_spent(user, 8 * EMC, billing_proof(spent, user.address), sender=stranger)
    log = single_event(receipt, market.SpentProven)
    assert (log.user, log.cumulative_spent, log.applied, log.overbilled, log.escrow) == (
        user.address,
        8 * EMC,
        8 * EMC,
        0,
        DEPOSIT - 8 * EMC,
    )
    assert market.escrow(user) == DEPOSIT - 8 * EMC
    assert market.spent_settled(user) == 8 * EMC
    assert market.outstanding_billed() == 0


def test_prove_spent__same_proof_twice__applies_once(
    wired_market, deposit, user, stranger, consensus
):
    market = wired_market
    deposit(user)
    spent = {user.address: 8 * EMC, stranger.address: 0}
    market.settle(8 * EMC, billing_root(spent), sender=consensus)
    proof = billing_proof(spent, user.address)
    market.prove_spent(user, 8 * EMC, proof, sender=user)
    receipt = market.prove_spent(user, 8 * EMC, proof, sender=user)
    assert single_event(receipt, market.SpentProven).applied == 0
    assert market.escrow(user) == DEPOSIT - 8 * EMC


def test_prove_spent__cumulative_goes_down__reverts(
    wired_market, deposit, user, stranger, consensus
):
    market = wired_market
    deposit(user)
    first = {user.address: 8 * EMC, stranger.address: 0}
    market.settle(8 * EMC, billing_root(first), sender=consensus)
    market.prove_spent(user, 8 * EMC, billing_proof(first, user.address), sender=user)
    lower = {user.address: 6 * EMC, stranger.address: 0}
    market.settle(0, billing_root(lower), sender=consensus)
    with ape.reverts("market: spent below settled"):
        market.prove_spent(user, 6 * EMC, billing_proof(lower, user.address), sender=user)


def test_prove_spent__no_root_yet__reverts(market, user):
    with ape.reverts("market: no billing root"):
        market.prove_spent(user, 0, [], sender=user)


def test_prove_spent__forged__reverts(wired_market, deposit, user, stranger, consensus):
    deposit(user)
    spent = {user.address: 8 * EMC, stranger.address: 0}
    wired_market.settle(8 * EMC, billing_root(spent), sender=consensus)
    with ape.reverts("market: invalid billing proof"):
        wired_market.prove_spent(user, 7 * EMC, billing_proof(spent, user.address), sender=user)
