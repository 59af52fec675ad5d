"""ComputeMarket escrow: deposit (with permit), request_withdraw, withdraw after the delay."""

import ape
import pytest

from tests.contracts.helpers import EMC, single_event
from tests.contracts.market.helpers import (
    WITHDRAW_DELAY,
    billing_proof,
    billing_root,
    permit_signature,
)

DEPOSIT = 50 * EMC


@pytest.fixture
def depositor(token, fund, market, user):
    """user with DEPOSIT in escrow."""
    fund(user, DEPOSIT)
    token.approve(market, DEPOSIT, sender=user)
    market.deposit(DEPOSIT, sender=user)
    return user


# --- deposit ---


def test_deposit__approved__credits_escrow_and_emits(market, token, fund, user):
    fund(user, DEPOSIT)
    token.approve(market, DEPOSIT, sender=user)
    receipt = market.deposit(DEPOSIT, sender=user)
    log = single_event(receipt, market.Deposited)
    assert (log.user, log.amount, log.escrow) == (user.address, DEPOSIT, DEPOSIT)
    assert market.escrow(user) == market.total_escrow() == DEPOSIT
    assert token.balanceOf(market) == market.unbilled_escrow() == DEPOSIT
    assert market.billable_from(user) == 1, "the next commit's root must hold the depositor"


def test_deposit__twice__adds_up(market, token, fund, depositor):
    fund(depositor, EMC)
    token.approve(market, EMC, sender=depositor)
    receipt = market.deposit(EMC, sender=depositor)
    assert single_event(receipt, market.Deposited).escrow == DEPOSIT + EMC
    assert market.escrow(depositor) == DEPOSIT + EMC


def test_deposit__zero__reverts(market, user):
    with ape.reverts("market: zero amount"):
        market.deposit(0, sender=user)


def test_deposit__without_allowance__reverts(market, fund, user):
    fund(user, DEPOSIT)
    with ape.reverts("erc20: insufficient allowance"):
        market.deposit(DEPOSIT, sender=user)


def test_deposit_with_permit__valid_signature__deposits_in_one_transaction(
    market, token, fund, chain, user
):
    fund(user, DEPOSIT)
    deadline = chain.pending_timestamp + 600
    signed = permit_signature(
        token, user.private_key, user.address, market.address, DEPOSIT, 0, deadline, chain.chain_id
    )
    receipt = market.deposit_with_permit(
        DEPOSIT, deadline, signed.v, signed.r, signed.s, sender=user
    )
    assert market.escrow(user) == DEPOSIT
    assert token.nonces(user) == 1
    assert token.allowance(user, market) == 0
    assert single_event(receipt, market.Deposited).amount == DEPOSIT


def test_deposit_with_permit__front_run_permit__still_deposits(
    market, token, fund, chain, user, stranger
):
    fund(user, DEPOSIT)
    deadline = chain.pending_timestamp + 600
    signed = permit_signature(
        token, user.private_key, user.address, market.address, DEPOSIT, 0, deadline, chain.chain_id
    )
    token.permit(user, market, DEPOSIT, deadline, signed.v, signed.r, signed.s, sender=stranger)
    market.deposit_with_permit(DEPOSIT, deadline, signed.v, signed.r, signed.s, sender=user)
    assert market.escrow(user) == DEPOSIT


def test_deposit_with_permit__forged_signature__reverts(market, token, fund, chain, user, stranger):
    fund(user, DEPOSIT)
    deadline = chain.pending_timestamp + 600
    signed = permit_signature(
        token,
        stranger.private_key,
        user.address,
        market.address,
        DEPOSIT,
        0,
        deadline,
        chain.chain_id,
    )
    with ape.reverts("erc20: insufficient allowance"):
        market.deposit_with_permit(DEPOSIT, deadline, signed.v, signed.r, signed.s, sender=user)


# --- request_withdraw ---


def test_request_withdraw__within_escrow__records_and_emits(market, chain, depositor):
    receipt = market.request_withdraw(DEPOSIT, sender=depositor)
    log = single_event(receipt, market.WithdrawRequested)
    unlock = chain.blocks[receipt.block_number].timestamp + WITHDRAW_DELAY
    assert (log.user, log.amount, log.withdrawable_at) == (depositor.address, DEPOSIT, unlock)
    assert market.withdrawal_requested(depositor) == DEPOSIT
    assert market.withdrawable_at(depositor) == unlock


def test_request_withdraw__more_than_escrow__reverts(market, depositor):
    with ape.reverts("market: exceeds escrow"):
        market.request_withdraw(DEPOSIT + 1, sender=depositor)


def test_request_withdraw__zero__reverts(market, depositor):
    with ape.reverts("market: zero amount"):
        market.request_withdraw(0, sender=depositor)


# --- withdraw ---


def test_withdraw__after_delay_never_billed__pays_without_proof(market, token, chain, depositor):
    market.request_withdraw(DEPOSIT, sender=depositor)
    chain.pending_timestamp += WITHDRAW_DELAY
    assert market.proof_required(depositor) is False
    receipt = market.withdraw(0, [], sender=depositor)
    log = single_event(receipt, market.Withdrawn)
    assert (log.user, log.amount, log.requested, log.escrow) == (
        depositor.address,
        DEPOSIT,
        DEPOSIT,
        0,
    )
    assert token.balanceOf(depositor) == DEPOSIT
    assert market.escrow(depositor) == market.total_escrow() == token.balanceOf(market) == 0
    assert market.withdrawal_requested(depositor) == 0


def test_withdraw__before_delay__reverts(market, chain, depositor):
    market.request_withdraw(DEPOSIT, sender=depositor)
    chain.pending_timestamp += WITHDRAW_DELAY - 5
    with ape.reverts("market: withdraw delay not over"):
        market.withdraw(0, [], sender=depositor)


def test_withdraw__new_request__restarts_clock(market, chain, depositor):
    market.request_withdraw(EMC, sender=depositor)
    chain.pending_timestamp += WITHDRAW_DELAY - 10
    market.request_withdraw(2 * EMC, sender=depositor)
    chain.pending_timestamp += 20
    with ape.reverts("market: withdraw delay not over"):
        market.withdraw(0, [], sender=depositor)


def test_withdraw__no_request__reverts(market, depositor):
    with ape.reverts("market: no withdrawal requested"):
        market.withdraw(0, [], sender=depositor)


def test_withdraw__twice__second_reverts(market, chain, depositor):
    market.request_withdraw(EMC, sender=depositor)
    chain.pending_timestamp += WITHDRAW_DELAY
    market.withdraw(0, [], sender=depositor)
    with ape.reverts("market: no withdrawal requested"):
        market.withdraw(0, [], sender=depositor)


def test_withdraw__claimed_spent_without_commit__reverts(market, chain, depositor):
    market.request_withdraw(DEPOSIT, sender=depositor)
    chain.pending_timestamp += WITHDRAW_DELAY
    with ape.reverts("market: invalid billing proof"):
        market.withdraw(5, [], sender=depositor)


# --- withdraw with billing (lazy: the proof is applied first) ---


def test_withdraw__billed__proof_applied_then_rest_paid(
    wired_market, token, chain, depositor, consensus, reward_sink
):
    market = wired_market
    spent = {depositor.address: 12 * EMC, consensus.address: 0}
    market.request_withdraw(DEPOSIT - 12 * EMC, sender=depositor)
    market.settle(12 * EMC, billing_root(spent), sender=consensus)
    assert token.balanceOf(reward_sink) == 12 * EMC
    chain.pending_timestamp += WITHDRAW_DELAY
    assert market.proof_required(depositor) is True
    receipt = market.withdraw(12 * EMC, billing_proof(spent, depositor.address), sender=depositor)
    proven = single_event(receipt, market.SpentProven)
    assert (proven.user, proven.cumulative_spent, proven.applied) == (
        depositor.address,
        12 * EMC,
        12 * EMC,
    )
    assert (proven.overbilled, proven.escrow) == (0, DEPOSIT - 12 * EMC)
    assert single_event(receipt, market.Withdrawn).amount == DEPOSIT - 12 * EMC
    assert token.balanceOf(depositor) == DEPOSIT - 12 * EMC
    assert market.escrow(depositor) == 0
    assert market.outstanding_billed() == 0
    assert token.balanceOf(market) == 0


def test_withdraw__more_than_free__pays_only_the_free_part(
    wired_market, token, chain, depositor, consensus
):
    """Requested before billing: the withdrawal pays what is left after the proven spent."""
    market = wired_market
    market.request_withdraw(DEPOSIT, sender=depositor)
    spent = {depositor.address: 20 * EMC}
    market.settle(20 * EMC, billing_root(spent), sender=consensus)
    chain.pending_timestamp += WITHDRAW_DELAY
    receipt = market.withdraw(20 * EMC, billing_proof(spent, depositor.address), sender=depositor)
    log = single_event(receipt, market.Withdrawn)
    assert (log.amount, log.requested, log.escrow) == (DEPOSIT - 20 * EMC, DEPOSIT, 0)
    assert token.balanceOf(depositor) == DEPOSIT - 20 * EMC


def test_withdraw__billed_but_no_proof__reverts(wired_market, chain, depositor, consensus):
    market = wired_market
    market.request_withdraw(EMC, sender=depositor)
    market.settle(EMC, billing_root({depositor.address: EMC}), sender=consensus)
    chain.pending_timestamp += WITHDRAW_DELAY
    with ape.reverts("market: invalid billing proof"):
        market.withdraw(0, [], sender=depositor)


def test_withdraw__stale_proof__reverts(wired_market, chain, depositor, consensus, stranger):
    market = wired_market
    old = {depositor.address: 5 * EMC, stranger.address: 0}
    new = {depositor.address: 9 * EMC, stranger.address: 0}
    market.request_withdraw(EMC, sender=depositor)
    market.settle(5 * EMC, billing_root(old), sender=consensus)
    market.settle(4 * EMC, billing_root(new), sender=consensus)
    chain.pending_timestamp += WITHDRAW_DELAY
    with ape.reverts("market: invalid billing proof"):
        market.withdraw(5 * EMC, billing_proof(old, depositor.address), sender=depositor)
    market.withdraw(9 * EMC, billing_proof(new, depositor.address), sender=depositor)
    assert market.escrow(depositor) == DEPOSIT - 9 * EMC - EMC


def test_withdraw__forged_spent__reverts(wired_market, chain, depositor, consensus, stranger):
    market = wired_market
    spent = {depositor.address: 5 * EMC, stranger.address: 0}
    market.request_withdraw(EMC, sender=depositor)
    market.settle(5 * EMC, billing_root(spent), sender=consensus)
    chain.pending_timestamp += WITHDRAW_DELAY
    proof = billing_proof(spent, depositor.address)
    with ape.reverts("market: invalid billing proof"):
        market.withdraw(EMC, proof, sender=depositor)
    with ape.reverts("market: invalid billing proof"):
        market.withdraw(0, billing_proof(spent, stranger.address), sender=depositor)


def test_withdraw__commit_in_flight_at_request__waits_for_it(
    wired_market, token, chain, depositor, consensus
):
    """Leaving before the commit in flight lands would put its bill on other users' escrow."""
    market = wired_market
    market.request_withdraw(DEPOSIT, sender=depositor)
    assert market.requested_at_commit(depositor) == 0
    chain.pending_timestamp += 100 * WITHDRAW_DELAY
    with ape.reverts("market: awaiting a commit"):
        market.withdraw(0, [], sender=depositor)
    spent = {depositor.address: 7 * EMC}
    market.settle(7 * EMC, billing_root(spent), sender=consensus)
    receipt = market.withdraw(7 * EMC, billing_proof(spent, depositor.address), sender=depositor)
    assert single_event(receipt, market.Withdrawn).amount == DEPOSIT - 7 * EMC
    assert token.balanceOf(market) == 0
