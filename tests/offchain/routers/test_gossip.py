"""Gossipsub between routers: records of answered requests reach the other router."""

import trio
from libp2p.peer.id import ID

from offchain.net import protocols
from offchain.net.framing import MsgType, decode_frame
from offchain.net.messages import RouteRecord, encode
from offchain.routers.agent import RouterAgent
from offchain.routers.client import RouterClient, caller
from offchain.routers.config import RouterConfig
from offchain.workers.node import NodeAgent, NodeConfig


async def test_records__published_by_serving_router__received_by_mesh_router():
    stop = trio.Event()
    r1 = RouterAgent(RouterConfig(gossip=True, ping_interval_s=1.0))
    r1._is_staked = lambda address: True  # the node below is staked for this test
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(r1.run, stop)
            await r1.ready.wait()
            r2 = RouterAgent(RouterConfig(gossip=True, peers=[r1.addrs()[0]]))
            nursery.start_soon(r2.run, stop)
            await r2.ready.wait()
            node = NodeAgent(NodeConfig(routers=[r1.addrs()[0]]))
            nursery.start_soon(node.run, stop)
            while not r1.table.nodes or not r2.broadcast.ready.is_set():
                await trio.sleep(0.05)
            await trio.sleep(2)  # a couple of heartbeats to build the gossipsub mesh
            async with caller([r1.addrs()[0]]) as host, RouterClient(host) as client:
                for i in range(5):
                    reply = await client.call(ID.from_base58(r1.me), "echo", b"r%d" % i, 10)
                    assert reply.ok
            while r2.broadcast.received[protocols.TOPIC_RECORDS] < 5:
                await trio.sleep(0.1)
            assert r2.broadcast.dropped[protocols.TOPIC_RECORDS] == 0
            stop.set()


def test_route_record__frame_round_trip():
    record = RouteRecord(b"q" * 16, "echo", "12D3KooWnode", "12D3KooWrouter", b"\x01" * 32, 1)
    msg_type, value = decode_frame(encode(record), frozenset({MsgType.RECORD}))
    assert RouteRecord.from_map(value) == record
