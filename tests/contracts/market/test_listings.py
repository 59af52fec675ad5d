"""ComputeMarket.list_socket, cancel_listing and buy: fixed-price sales with a protocol fee."""

import ape
import pytest

from tests.contracts.helpers import EMC, single_event
from tests.contracts.market.helpers import fee_of

PRICE = 40 * EMC


@pytest.fixture
def listed(market, sockets, create_socket, compute_node):
    """A socket held and listed by compute_node at PRICE; returns its id."""
    token_id = create_socket()
    sockets.approve(market, token_id, sender=compute_node)
    market.list_socket(token_id, PRICE, sender=compute_node)
    return token_id


@pytest.fixture
def funded_buyer(token, fund, market, user):
    fund(user, 100 * EMC)
    token.approve(market, 100 * EMC, sender=user)
    return user


# --- list_socket ---


def test_list_socket__holder_approved__records_and_emits(
    market, sockets, create_socket, compute_node
):
    token_id = create_socket()
    sockets.setApprovalForAll(market, True, sender=compute_node)
    receipt = market.list_socket(token_id, PRICE, sender=compute_node)
    log = single_event(receipt, market.Listed)
    assert (log.token_id, log.seller, log.price) == (token_id, compute_node.address, PRICE)
    assert market.listings(token_id) == (compute_node.address, PRICE, 0)
    assert sockets.ownerOf(token_id) == compute_node.address, "listings are non-custodial"


def test_list_socket__not_holder__reverts(market, sockets, create_socket, stranger):
    token_id = create_socket()
    with ape.reverts("market: not the holder"):
        market.list_socket(token_id, PRICE, sender=stranger)


def test_list_socket__market_not_approved__reverts(market, create_socket, compute_node):
    token_id = create_socket()
    with ape.reverts("market: not approved"):
        market.list_socket(token_id, PRICE, sender=compute_node)


def test_list_socket__zero_price__reverts(market, sockets, create_socket, compute_node):
    token_id = create_socket()
    sockets.approve(market, token_id, sender=compute_node)
    with ape.reverts("market: zero price"):
        market.list_socket(token_id, 0, sender=compute_node)


def test_list_socket__relist__replaces_price(market, listed, compute_node):
    market.list_socket(listed, 2 * PRICE, sender=compute_node)
    assert market.listings(listed).price == 2 * PRICE


# --- buy ---


def test_buy__listed__pays_seller_and_treasury_and_moves_socket(
    market, sockets, token, listed, funded_buyer, compute_node, treasury
):
    seller_before, treasury_before = token.balanceOf(compute_node), token.balanceOf(treasury)
    receipt = market.buy(listed, PRICE, sender=funded_buyer)
    fee = fee_of(PRICE)
    assert fee == market.fee_for(PRICE) == PRICE * 250 // 10_000
    assert token.balanceOf(compute_node) == seller_before + PRICE - fee
    assert token.balanceOf(treasury) == treasury_before + fee
    assert token.balanceOf(funded_buyer) == 100 * EMC - PRICE
    assert token.balanceOf(market) == 0, "sales never leave EMC in the market"
    assert sockets.ownerOf(listed) == funded_buyer.address
    assert market.listings(listed).seller == ape.utils.ZERO_ADDRESS
    log = single_event(receipt, market.Sold)
    assert (log.token_id, log.seller, log.buyer) == (
        listed,
        compute_node.address,
        funded_buyer.address,
    )
    assert (log.price, log.fee) == (PRICE, fee)


def test_buy__fee_rounds_down__seller_gets_remainder(
    market, sockets, token, create_socket, compute_node, funded_buyer, treasury
):
    token_id = create_socket()
    sockets.approve(market, token_id, sender=compute_node)
    market.list_socket(token_id, 399, sender=compute_node)
    seller_before = token.balanceOf(compute_node)
    market.buy(token_id, 399, sender=funded_buyer)
    assert token.balanceOf(treasury) == 9  # 399 * 250 // 10_000
    assert token.balanceOf(compute_node) == seller_before + 390


def test_buy__own_listing__reverts(market, listed, token, fund, compute_node):
    fund(compute_node, PRICE)
    token.approve(market, PRICE, sender=compute_node)
    with ape.reverts("market: own listing"):
        market.buy(listed, PRICE, sender=compute_node)


def test_buy__stale_after_transfer__reverts(
    market, sockets, listed, compute_node, funded_buyer, stranger
):
    sockets.transferFrom(compute_node, stranger, listed, sender=compute_node)
    with ape.reverts("market: stale listing"):
        market.buy(listed, PRICE, sender=funded_buyer)


def test_buy__approval_revoked__stale_reverts(market, sockets, listed, compute_node, funded_buyer):
    sockets.approve(ape.utils.ZERO_ADDRESS, listed, sender=compute_node)
    with ape.reverts("market: stale listing"):
        market.buy(listed, PRICE, sender=funded_buyer)


def test_buy__stale_listing_revived_by_a_round_trip__reverts(
    market, sockets, listed, compute_node, funded_buyer, stranger
):
    """A listing forgotten when the socket left must not come back to life when it returns."""
    sockets.setApprovalForAll(market, True, sender=compute_node)
    sockets.transferFrom(compute_node, stranger, listed, sender=compute_node)
    sockets.transferFrom(stranger, compute_node, listed, sender=stranger)
    with ape.reverts("market: stale listing"):
        market.buy(listed, PRICE, sender=funded_buyer)
    # Relisting after the round trip is live.
    market.list_socket(listed, PRICE, sender=compute_node)
    market.buy(listed, PRICE, sender=funded_buyer)
    assert sockets.ownerOf(listed) == funded_buyer.address


def test_buy__price_above_maximum__reverts(market, listed, funded_buyer):
    with ape.reverts("market: price above maximum"):
        market.buy(listed, PRICE - 1, sender=funded_buyer)


def test_buy__not_listed__reverts(market, create_socket, funded_buyer):
    token_id = create_socket()
    with ape.reverts("market: not listed"):
        market.buy(token_id, PRICE, sender=funded_buyer)


def test_buy__twice__second_reverts(market, listed, funded_buyer, token, fund, stranger):
    market.buy(listed, PRICE, sender=funded_buyer)
    fund(stranger, PRICE)
    token.approve(market, PRICE, sender=stranger)
    with ape.reverts("market: not listed"):
        market.buy(listed, PRICE, sender=stranger)


def test_buy__buyer_without_allowance__reverts(market, listed, fund, stranger):
    fund(stranger, PRICE)
    with ape.reverts("erc20: insufficient allowance"):
        market.buy(listed, PRICE, sender=stranger)


# --- cancel_listing ---


def test_cancel_listing__seller__removes_and_emits(market, listed, compute_node):
    receipt = market.cancel_listing(listed, sender=compute_node)
    log = single_event(receipt, market.ListingCancelled)
    assert (log.token_id, log.seller) == (listed, compute_node.address)
    assert market.listings(listed).seller == ape.utils.ZERO_ADDRESS


def test_cancel_listing__stranger__reverts(market, listed, stranger):
    with ape.reverts("market: not the seller"):
        market.cancel_listing(listed, sender=stranger)


def test_cancel_listing__new_holder_of_stale_listing__removes(
    market, sockets, listed, compute_node, stranger
):
    sockets.transferFrom(compute_node, stranger, listed, sender=compute_node)
    market.cancel_listing(listed, sender=stranger)
    assert market.listings(listed).seller == ape.utils.ZERO_ADDRESS


def test_cancel_listing__not_listed__reverts(market, create_socket, compute_node):
    token_id = create_socket()
    with ape.reverts("market: not listed"):
        market.cancel_listing(token_id, sender=compute_node)


def test_cancel_listing__then_buy__reverts(market, listed, compute_node, funded_buyer):
    market.cancel_listing(listed, sender=compute_node)
    with ape.reverts("market: not listed"):
        market.buy(listed, PRICE, sender=funded_buyer)
