"""Signed orders checked against the deployed contracts: a wallet-signed order on a real socket
is admitted, a delegate is admitted until its use is revoked, and a socket's holder it is not."""

import pytest

from offchain.crypto.keys import generate_keypair
from offchain.protocol.invocation.invocation_errors import InvocationRejected
from offchain.routers.admission import Admission
from offchain.routers.router_client import order_for, sign_order, signed_request
from tests.offchain.routers.invocationnet import PRICE, WORKLOAD, ContractView, open_market

NODE_KEY = generate_keypair(b"chain-node".ljust(32, b"\0")).private_key
ROUTER_KEY = generate_keypair(b"chain-router".ljust(32, b"\0")).private_key


@pytest.fixture(scope="module")
def market(chain):
    return open_market(chain, NODE_KEY, ROUTER_KEY)


def admit(market, signer, nonce: int):
    now = market.chain.client.w3.eth.get_block("latest")["timestamp"]
    order = order_for(
        signer.address, market.socket_id, WORKLOAD, b"x", PRICE, nonce=nonce, deadline=now + 60
    )
    request = signed_request(order, sign_order(signer, order, market.domain), b"x")
    return Admission(market.domain, ContractView(market.chain)).admit(request, now)


def test_admit__holder_signs_with_eth_account__admitted_at_the_sockets_price(market):
    assert admit(market, market.user, 1).price == PRICE


def test_admit__delegate__admitted_until_revoked(market):
    market.delegate_to(market.delegate)
    assert admit(market, market.delegate, 2).order.user == market.delegate.address
    market.delegate_to(None)
    with pytest.raises(InvocationRejected) as refused:
        admit(market, market.delegate, 3)
    assert refused.value.reason == "socket-not-held"


def test_admit__stranger__socket_not_held(market):
    with pytest.raises(InvocationRejected) as refused:
        admit(market, market.stranger, 4)
    assert refused.value.reason == "socket-not-held"
