"""The routers' chain view of sockets, nodes and escrow against a real anvil and the deployed
contracts: each change is seen after its event, reads never wait, and misses are counted."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from eth_account import Account

from offchain.chain.chain_client import ChainError
from offchain.chain.market_view import (
    MarketSnapshot,
    MarketView,
    connect_market,
    escrow_key,
    node_key,
    socket_key,
)
from offchain.protocol.invocation import (
    EscrowInfo,
    InvocationDomain,
    InvocationRequest,
    check_request,
    sign_request,
)
from offchain.protocol.invocation.invocation_errors import SocketNotHeld
from tests.waiting import wait_until

WORKLOAD = "matmul-f32"
PRICE = 10**15
ZERO = "0x" + "00" * 20
NO_NONCES = frozenset[tuple[str, int]]()


@asynccontextmanager
async def running(chain, **options) -> AsyncIterator[MarketView]:
    """A view of ``chain`` that follows events every 20 ms and never sweeps on its own."""
    reader = connect_market(chain.anvil.url, str(chain.record), chain_id=31337)
    options = {"refresh_s": 3600, "follow_s": 0.02, **options}
    view = MarketView(reader, lambda user, nonce: (user, nonce) in NO_NONCES, **options)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(view.run)
        await wait_until(lambda: view._fresh_from is not None, "the follower's first poll")
        yield view
        nursery.cancel_scope.cancel()


def later(chain, seconds: int) -> int:
    return chain.client.w3.eth.get_block("latest")["timestamp"] + seconds


async def test_socket__mint_user_revoke_transfer__each_seen_after_its_event(chain):
    node = chain.compute_node((WORKLOAD,))
    holder, delegate, buyer = chain.account(), chain.account(), chain.account()
    async with running(chain) as view:
        socket_id = chain.mint_socket(node, holder.address, WORKLOAD, PRICE)
        assert view.socket(socket_id) is None  # not read yet: answered at once, looked up behind
        assert await view.ready([socket_key(socket_id)], timeout_s=10)
        socket = view.socket(socket_id)
        assert (socket.holder, socket.issuer, socket.workload, socket.price, socket.user) == (
            holder.address,
            node.address,
            WORKLOAD,
            PRICE,
            None,
        )
        assert socket.expiry > time.time() and not socket.open_serving and socket.stake_required

        expires = later(chain, 3600)
        chain.set_user(holder, socket_id, delegate.address, expires)
        await wait_until(lambda: view.socket(socket_id).user == delegate.address, "the user")
        assert view.socket(socket_id).user_expires == expires

        chain.set_user(holder, socket_id, ZERO, 0)  # revoked
        await wait_until(lambda: view.socket(socket_id).user is None, "the revocation")

        chain.set_user(holder, socket_id, delegate.address, expires)
        await wait_until(lambda: view.socket(socket_id).user == delegate.address, "a new user")
        chain.transfer_socket(holder, buyer.address, socket_id)  # clears the user
        await wait_until(lambda: view.socket(socket_id).holder == buyer.address, "the transfer")
        assert view.socket(socket_id).user is None


async def test_socket__minted_while_followed__named_by_its_event_and_read_again(chain):
    """A socket asked for before it exists is read absent; its mint's events correct that."""
    node = chain.compute_node((WORKLOAD,))
    holder = chain.account()
    async with running(chain) as view:
        upcoming = chain.sockets.functions.next_token_id().call()
        assert await view.ready([socket_key(upcoming)], timeout_s=10)
        assert view.has(socket_key(upcoming)) and view.socket(upcoming) is None
        assert chain.mint_socket(node, holder.address) == upcoming
        await wait_until(lambda: view.socket(upcoming) is not None, "the mint")
        assert view.socket(upcoming).holder == holder.address


async def test_escrow__deposit_and_withdrawal_request__each_seen_after_its_event(chain):
    user = chain.account()
    async with running(chain) as view:
        assert view.escrow(user.address) == EscrowInfo(balance=0)
        assert await view.ready([escrow_key(user.address)], timeout_s=10)
        chain.deposit(user, 5 * PRICE)
        await wait_until(lambda: view.escrow(user.address).balance == 5 * PRICE, "the deposit")
        chain.request_withdraw(user, 2 * PRICE)
        await wait_until(
            lambda: view.escrow(user.address).withdrawal_requested == 2 * PRICE, "the request"
        )
        assert view.escrow(user.address) == EscrowInfo(
            balance=5 * PRICE, withdrawal_requested=2 * PRICE
        )


async def test_node__declared_staked_then_blacklisted__each_seen_after_its_event(chain):
    node = chain.account()
    async with running(chain) as view:
        assert await view.ready([node_key(node.address)], timeout_s=10)
        assert view.node(node.address) is None  # no registry entry
        chain.declare(node, (WORKLOAD, "other"))
        await wait_until(lambda: view.node(node.address) is not None, "the declaration")
        assert view.node(node.address).workloads == {WORKLOAD, "other"}
        assert not view.node(node.address).staked
        chain.stake(node)
        await wait_until(lambda: view.node(node.address).staked, "the stake")
        chain.blacklist(node.address)
        await wait_until(lambda: view.node(node.address).blacklisted, "the blacklisting")
        assert not view.node(node.address).staked  # a blacklisted node is active in no role


async def test_request_check__served_from_the_view__refused_once_the_user_is_revoked(chain):
    node = chain.compute_node((WORKLOAD,))
    holder, delegate = chain.account(), chain.account()
    socket_id = chain.mint_socket(node, holder.address, WORKLOAD, PRICE)
    chain.set_user(holder, socket_id, delegate.address, later(chain, 3600))
    chain.deposit(delegate, 3 * PRICE)
    domain = InvocationDomain(31337, chain.market.address)
    now = chain.client.w3.eth.get_block("latest")["timestamp"]
    request = InvocationRequest(
        delegate.address, socket_id, WORKLOAD, bytes(32), PRICE, 1, now + 600
    )
    signature = sign_request(delegate.key, request, domain)
    async with running(chain) as view:
        assert await view.ready_for(socket_id, delegate.address, timeout_s=10)
        assert view.has(node_key(node.address))  # the issuer's entry came with the socket
        assert check_request(request, signature, domain, view, now, pending=0) == request
        chain.set_user(holder, socket_id, ZERO, 0)
        await wait_until(lambda: view.socket(socket_id).user is None, "the revocation")
        with pytest.raises(SocketNotHeld):
            check_request(request, signature, domain, view, now, pending=0)


async def test_reads__never_wait__misses_and_hits_counted(chain):
    users = [Account.create().address for _ in range(5)]
    async with running(chain) as view:
        assert [view.escrow(u) for u in users] == [EscrowInfo(balance=0)] * 5
        assert (view.hits, view.misses) == (0, 5)
        assert await view.ready([escrow_key(u) for u in users], timeout_s=10)
        for user in users:
            view.escrow(user)
        assert (view.hits, view.misses) == (5, 5)
        assert view.hit_rate == 0.5


async def test_lookups__queue_bounded__a_flood_of_misses_dropped_and_counted(chain):
    async with running(chain, max_pending=4, lookups_per_s=1) as view:
        for socket_id in range(10**6, 10**6 + 50):
            assert view.socket(socket_id) is None
        assert view.dropped >= 46
        assert len(view._pending) <= 4


async def test_ready__chain_down__returns_false_within_its_bound(chain):
    async with running(chain) as view:
        view._source.rpc = type(view._source.rpc)("http://127.0.0.1:9", timeout_s=0.5)
        assert await view.ready([socket_key(1)], timeout_s=0.3) is False
        assert view.socket(2) is None  # still answers, from memory


def test_snapshot__answers_at_its_block__later_changes_not_seen__nonces_from_the_settler(chain):
    node = chain.compute_node((WORKLOAD,))
    holder = chain.account()
    socket_id = chain.mint_socket(node, holder.address, WORKLOAD, PRICE)
    chain.deposit(holder, 5 * PRICE)
    reader = connect_market(chain.anvil.url, str(chain.record), chain_id=31337)
    billed = {(holder.address, 7)}
    snapshot = MarketSnapshot(reader, lambda user, nonce: (user, nonce) in billed)
    assert snapshot.socket(socket_id).holder == holder.address
    assert snapshot.socket(socket_id + 1) is None
    assert snapshot.node(node.address).staked
    assert snapshot.node(node.address.lower()).workloads == {WORKLOAD}
    assert snapshot.node(chain.account().address) is None
    assert snapshot.escrow(holder.address) == EscrowInfo(balance=5 * PRICE)
    assert snapshot.nonce_used(holder.address, 7) and not snapshot.nonce_used(holder.address, 8)
    chain.request_withdraw(holder, PRICE)
    chain.blacklist(node.address)
    # the snapshot is the chain at its block: a later block's changes are another snapshot's
    assert snapshot.escrow(holder.address).withdrawal_requested == 0
    assert not snapshot.node(node.address).blacklisted
    fresh = MarketSnapshot(reader, lambda _user, _nonce: False)
    assert fresh.block > snapshot.block
    assert fresh.escrow(holder.address).withdrawal_requested == PRICE
    assert fresh.node(node.address).blacklisted


def test_connect__wrong_chain_id__refused(chain):
    with pytest.raises(ChainError, match="is chain 31337, but chain 1 is configured"):
        connect_market(chain.anvil.url, str(chain.record), chain_id=1)


def test_reader__log_not_asked_for__refused(chain):
    reader = connect_market(chain.anvil.url, str(chain.record), chain_id=31337)
    forged = {"address": Account.create().address, "topics": ["0x" + "11" * 32], "data": "0x"}
    with pytest.raises(ChainError, match="not asked for"):
        reader.events.changes([forged])


def test_reader__log_without_its_key__refused(chain):
    reader = connect_market(chain.anvil.url, str(chain.record), chain_id=31337)
    head = reader.head()
    user = chain.account()
    chain.deposit(user, PRICE)
    (log,) = [
        entry
        for entry in reader.rpc.logs(
            reader.events.addresses, reader.events.topics, head + 1, reader.head()
        )
        if entry["address"].lower() == chain.market.address.lower()
    ]
    assert reader.events.changes([log]).subjects == {escrow_key(user.address)}
    with pytest.raises(ChainError, match="without its address field"):
        reader.events.changes([{**log, "topics": log["topics"][:1]}])


async def test_malformed_keys__answered_absent__never_queued(chain):
    user = chain.account()
    async with running(chain) as view:
        assert view.node(user.address.lower()) is None  # not checksummed
        assert view.socket(-1) is None and view.socket(1 << 256) is None
        assert view.escrow("0x1234") == EscrowInfo(balance=0)
        assert len(view._pending) == 0
        # A good key next to them is read as usual.
        assert await view.ready([escrow_key(user.address)], timeout_s=10)
