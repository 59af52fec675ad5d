import dataclasses

import pytest
import trio
from eth_account import Account

from offchain.protocol.invocation import (
    InvocationDomain,
    MemoryChainView,
    SocketInfo,
    content_hash,
    decode_receipt,
    eip712,
    recover_receipt_signer,
    request_digest,
)
from offchain.protocol.wire import Request
from offchain.routers.router_client import order_for, sign_order, signed_request
from offchain.workers.node import NodeAgent, NodeConfig, Pricing, resolve_workloads
from tests.waiting import wait_until

DOMAIN = InvocationDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
ROUTER = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"


def agent(**kw) -> NodeAgent:
    return NodeAgent(NodeConfig(routers=[ROUTER], **kw))


def request(workload: str, payload: bytes = b"x") -> Request:
    return Request(b"q" * 16, workload, payload)


async def test_execute__echo__returns_input_and_node_id():
    node = agent()
    reply = await node.execute(request("echo", b"hello"))
    assert reply.ok and reply.output == b"hello" and reply.node == node.me


async def test_execute__alias__runs_its_kind():
    node = agent(workloads=["echo-b=echo"])
    assert (await node.execute(request("echo-b", b"hi"))).output == b"hi"
    assert (await node.execute(request("echo"))).error == "unknown-workload"


async def test_execute__bad_input__workload_error_not_crash():
    reply = await agent(workloads=["sleep"]).execute(request("sleep", b"not a number"))
    assert not reply.ok and reply.error == "workload-error"


async def test_execute__queue_full__busy_at_once():
    node = agent(workloads=["sleep"], parallel=1, queue_size=1)
    replies = []

    async def run(payload: bytes) -> None:
        replies.append(await node.execute(request("sleep", payload)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, b"200")
        nursery.start_soon(run, b"200")
        await wait_until(lambda: node.pending == 2, "one running, one queued")
        assert node.pending == 2  # one running, one queued
        third = await node.execute(request("sleep", b"1"))
        assert third.error == "busy"
    assert [r.ok for r in replies] == [True, True]
    assert node.pending == 0


def test_resolve__unknown_kind__refused():
    with pytest.raises(ValueError, match="unknown workload"):
        resolve_workloads(["nope"])


def test_config__no_router__refused():
    with pytest.raises(ValueError):
        NodeAgent(NodeConfig(routers=[]))
    with pytest.raises(ValueError):
        NodeConfig(routers=[ROUTER], parallel=0)


def test_hello__capacity_and_binding():
    node = agent(parallel=3, queue_size=5, workloads=["echo", "sleep"])
    hello = node._hello()
    assert hello.capacity == 8
    assert hello.workloads == ("echo", "sleep")
    assert hello.binding  # signed by the node's Ethereum key for its peer id


async def test_execute__registry_workload__runs_through_the_codec():
    import numpy as np

    from offchain.workers.workloads import decode, encode

    node = agent(workloads=["matmul-f32"])
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((3, 2), dtype=np.float32)
    reply = await node.execute(request("matmul-f32", encode({"a": a, "b": b})))
    assert reply.ok, reply
    assert np.array_equal(decode(reply.output)["c"], a @ b)
    bad = await node.execute(request("matmul-f32", b"not tensors"))
    assert not bad.ok and bad.error == "workload-error"


# ------------------------------------------------------------------ signed orders and receipts


def pricing_view(node: NodeAgent, price: int = 5):
    """Return the pricing of a socket (id 1, echo, at ``price``) that ``node`` issued."""
    holder = Account.from_key(b"\x21" * 32)
    socket = SocketInfo(
        holder=holder.address, workload="echo", price=price, issuer=node.eth.address, expiry=2**40
    )
    return holder, MemoryChainView(sockets={1: socket})


def signed(holder, payload: bytes, max_price: int = 5, router: bytes = b"\x07" * 20) -> Request:
    order = order_for(holder.address, 1, "echo", payload, max_price, nonce=1, deadline=2**40)
    request = signed_request(order, sign_order(holder, order, DOMAIN), payload)
    return dataclasses.replace(request, router=router)


async def test_execute__signed_order__receipt_of_the_output_signed_by_the_staked_key():
    node = agent()
    holder, view = pricing_view(node)
    node.pricing = Pricing(DOMAIN, view)
    request = signed(holder, b"hello")
    reply = await node.execute(request)
    assert reply.ok and reply.output == b"hello"
    receipt = decode_receipt(reply.receipt)
    assert receipt.output_hash == content_hash(b"hello")
    assert (receipt.units, receipt.price, receipt.worker) == (1, 5, node.eth.address)
    assert receipt.router == eip712.address_from_bytes(b"\x07" * 20)
    assert recover_receipt_signer(receipt, reply.node_signature, DOMAIN) == node.eth.address
    order = order_for(holder.address, 1, "echo", b"hello", 5, nonce=1, deadline=2**40)
    assert receipt.request_hash == request_digest(order, DOMAIN)


async def test_execute__order_not_for_this_input__refused_before_any_work():
    node = agent()
    holder, view = pricing_view(node)
    node.pricing = Pricing(DOMAIN, view)
    request = dataclasses.replace(signed(holder, b"hello"), payload=b"other")
    reply = await node.execute(request)
    assert not reply.ok and reply.error == "input-mismatch" and not reply.receipt


async def test_execute__price_above_the_orders_max__no_receipt():
    node = agent()
    holder, view = pricing_view(node, price=6)
    node.pricing = Pricing(DOMAIN, view)
    reply = await node.execute(signed(holder, b"hello", max_price=5))
    assert not reply.ok and reply.error == "price-above-max" and not reply.node_signature


async def test_execute__signed_order_without_pricing__refused():
    node = agent()
    holder, _view = pricing_view(node)
    reply = await node.execute(signed(holder, b"hello"))
    assert reply.error == "no-pricing"
