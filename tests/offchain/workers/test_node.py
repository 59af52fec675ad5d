import pytest
import trio

from offchain.protocol.wire import Request
from offchain.workers.node import NodeAgent, NodeConfig, resolve_workloads
from tests.waiting import wait_until

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
