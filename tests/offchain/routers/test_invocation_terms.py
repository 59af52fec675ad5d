"""A socket's serving terms, read from the chain, decide which nodes' records pass the checks.

On a real anvil: one issuer mints an issuer-only, an open-to-staked and an open-to-any socket;
another staked node and an unstaked node that declare the same workload each serve each socket.
The records are checked as routers and validators check them (``check_record``) against the
routers' own market view (``MarketView``, following the chain), and each verdict is the one
ComputeSocket's ``can_serve`` gives for the same node.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
import trio

from offchain.chain.market_view import (
    MarketView,
    connect_market,
    escrow_key,
    node_key,
    socket_key,
)
from offchain.protocol.invocation import (
    InvocationDomain,
    InvocationRecord,
    InvocationRequest,
    Receipt,
    check_record,
    content_hash,
    request_digest,
    sign_receipt,
    sign_record,
    sign_request,
    split_price,
)
from offchain.protocol.invocation.invocation_errors import InvocationRejected
from tests.waiting import wait_until

WORKLOAD = "echo"
PRICE = 1_009
INPUT, OUTPUT = b"in", b"out"
TERMS = {"issuer-only": (False, True), "open-staked": (True, True), "open-any": (True, False)}
# What check_record answers for each serving node, by terms (None: it passes).
EXPECTED = {
    "issuer-only": {"issuer": None, "staked": "node-not-allowed", "unstaked": "node-not-allowed"},
    "open-staked": {"issuer": None, "staked": None, "unstaked": "node-unstaked"},
    "open-any": {"issuer": None, "staked": None, "unstaked": None},
}


@asynccontextmanager
async def following(chain) -> AsyncIterator[MarketView]:
    """The routers' market view of ``chain``, following its events every 20 ms."""
    reader = connect_market(chain.anvil.url, str(chain.record), chain_id=31337)
    view = MarketView(reader, lambda _user, _nonce: False, refresh_s=3600, follow_s=0.02)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(view.run)
        await wait_until(lambda: view._fresh_from is not None, "the follower's first poll")
        yield view
        nursery.cancel_scope.cancel()


@pytest.fixture(scope="module")
def market(chain):
    """The issuer, the other nodes, a router and a user with escrow; a socket per terms."""
    nodes = {
        "issuer": chain.compute_node((WORKLOAD,)),
        "staked": chain.compute_node((WORKLOAD,)),
        "unstaked": chain.account(),
    }
    chain.declare(nodes["unstaked"], (WORKLOAD,))
    router, user = chain.account(), chain.account()
    chain.deposit(user, 100 * PRICE)
    sockets = {
        name: chain.mint_socket(nodes["issuer"], user.address, WORKLOAD, PRICE, terms=terms)
        for name, terms in TERMS.items()
    }
    domain = InvocationDomain(31337, chain.market.address)
    return nodes, router, user, sockets, domain


def served_record(domain, user, socket_id, worker, router, nonce, now) -> InvocationRecord:
    """Return the record of ``worker`` serving ``user``'s order on ``socket_id``, all signed."""
    request = InvocationRequest(
        user.address, socket_id, WORKLOAD, content_hash(INPUT), PRICE, nonce, now + 60
    )
    receipt = Receipt(
        request_digest(request, domain), content_hash(OUTPUT), 1, PRICE, worker.address,
        router.address,
    )  # fmt: skip
    record = InvocationRecord(
        request,
        sign_request(bytes(user.key), request, domain),
        receipt,
        sign_receipt(bytes(worker.key), receipt, domain),
        b"",
    )
    return replace(record, router_signature=sign_record(bytes(router.key), record, domain))


async def test_check_record__each_node_on_each_socket__as_its_terms_and_can_serve_say(
    chain, market
):
    nodes, router, user, sockets, domain = market
    now = chain.client.w3.eth.get_block("latest")["timestamp"]
    keys = [socket_key(socket_id) for socket_id in sockets.values()]
    keys += [node_key(node.address) for node in nodes.values()] + [escrow_key(user.address)]
    async with following(chain) as view:
        assert await view.ready(keys, timeout_s=10)
        for name, (open_serving, stake_required) in TERMS.items():
            socket = view.socket(sockets[name])
            assert (socket.open_serving, socket.stake_required) == (open_serving, stake_required)
            for who, node in nodes.items():
                nonce = len(name) * 100 + len(who)
                record = served_record(domain, user, sockets[name], node, router, nonce, now)
                try:
                    check_record(record, domain, view, now, 0, output=OUTPUT)
                    refusal = None
                except InvocationRejected as exc:
                    refusal = exc.reason
                assert refusal == EXPECTED[name][who], (name, who)
                can_serve = chain.sockets.functions.can_serve(sockets[name], node.address).call()
                assert can_serve is (refusal is None), (name, who)


async def test_open_socket__served_by_another_node__issuer_paid_its_share(chain, market):
    nodes, _router, _user, sockets, _domain = market
    async with following(chain) as view:
        assert await view.ready([socket_key(sockets["open-any"])], timeout_s=10)
        socket = view.socket(sockets["open-any"])
    by_other = split_price(PRICE, socket, nodes["unstaked"].address)
    by_issuer = split_price(PRICE, socket, nodes["issuer"].address)
    assert (by_other.node, by_other.router, by_other.issuer) == (809, 100, 100)
    assert (by_issuer.node, by_issuer.router, by_issuer.issuer) == (909, 100, 0)
