"""Gossipsub between routers: records reach the other router, only gossip peers take part,
and a flooding peer is held to its rate."""

import dataclasses

import multiaddr
import pytest
import trio
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service.context import background_trio_service

from offchain.chain.identity import encode_binding, make_binding
from offchain.crypto.keys import generate_keypair
from offchain.net.host import identity_from_seed, make_host
from offchain.net.libp2p_patches import gossip_notifee
from offchain.net.limits import node_limits
from offchain.net.streams import NET_ERRORS
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.frames import FrameError, MsgType, decode_frame
from offchain.protocol.invocation import (
    InvocationDomain,
    InvocationRecord,
    InvocationRequest,
    Receipt,
    encode_record,
    request_digest,
    sign_receipt,
    sign_record,
    sign_request,
)
from offchain.protocol.wire import RecordBatch, encode
from offchain.routers.agent import RouterAgent
from offchain.routers.config import RouterConfig
from offchain.routers.gossip import (
    GOSSIP_TYPES,
    MAX_GOSSIP_BYTES,
    MESHSUB_PROTOCOLS,
    TokenBucket,
    decode_records,
    join_gossip,
)
from offchain.routers.router_client import caller
from offchain.runtime.spawn import seed_hex
from offchain.workers.node import NodeAgent, NodeConfig
from tests.offchain.routers.routernet import eth_address
from tests.waiting import wait_until

DOMAIN = InvocationDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


async def test_records__published_by_serving_router__received_by_mesh_router():
    stop = trio.Event()
    # Gossip is on by default; it runs between routers that admitted each other to the mesh.
    routers = [eth_address("gossip-r1"), eth_address("gossip-r2")]
    r1 = RouterAgent(
        RouterConfig(
            ping_interval_s=1.0, eth_key_seed=seed_hex("gossip-r1"), staked_routers=routers
        )
    )
    r1.node_links.is_staked = lambda address: True  # the node below is staked for this test
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(r1.run, stop)
            await r1.ready.wait()
            r2 = RouterAgent(
                RouterConfig(
                    peers=[r1.addrs()[0]],
                    eth_key_seed=seed_hex("gossip-r2"),
                    staked_routers=routers,
                )
            )
            nursery.start_soon(r2.run, stop)
            await r2.ready.wait()
            node = NodeAgent(NodeConfig(routers=[r1.addrs()[0]]))
            # Were a router to open gossipsub to the node, this would count it.
            meshsub_attempts: list[str] = []

            async def count_attempt(stream) -> None:
                meshsub_attempts.append(str(stream.get_protocol()))
                await stream.reset()

            for protocol in MESHSUB_PROTOCOLS:
                node.host.set_stream_handler(protocol, count_attempt)
            nursery.start_soon(node.run, stop)
            await wait_until(
                lambda: r1.table.nodes and r2.broadcast.is_gossip_peer(r1.host.get_id()),
                "the node linked to r1, and r1 a gossip peer of r2",
            )
            # Heartbeats build the gossipsub mesh: r1 publishes its records to r2 through it.
            await wait_until(
                lambda: (
                    r2.host.get_id() in r1.broadcast.gossipsub.mesh.get(protocols.TOPIC_RECORDS, ())
                ),
                "r2 in r1's gossipsub mesh for records",
            )
            async with caller([r1.addrs()[0]]) as host:
                # The records r1 countersigned for five requests it served.
                for i in range(5):
                    r1._record(sample_record(i))
                # Neither the node nor this caller is a gossip peer; the other router is.
                assert r1.broadcast.is_gossip_peer(r2.host.get_id())
                assert not r1.broadcast.is_gossip_peer(node.host.get_id())
                assert not r1.broadcast.is_gossip_peer(host.get_id())
            await wait_until(lambda: r2.broadcast.records_received >= 5, "5 records at r2")
            assert r2.broadcast.dropped[protocols.TOPIC_RECORDS] == 0
            # r1 sees its own batches delivered locally but counts only records from elsewhere.
            assert r1.broadcast.received[protocols.TOPIC_RECORDS] >= 1
            assert r1.broadcast.records_received == 0
            assert meshsub_attempts == []
            # The patch that keeps pubsub's connect events away is in place on both routers.
            gossip_notifee.verify(r1.host.get_network())
            gossip_notifee.verify(r2.host.get_network())
            stop.set()


async def test_flooding_peer__held_to_its_rate__rest_dropped_neither_delivered_nor_relayed():
    rate, burst, flood = 20.0, 20, 300
    stop = trio.Event()
    # The flooder is a staked validator: it joins gossip, then publishes as fast as it can.
    validator = generate_keypair(bytes.fromhex(seed_hex("gossip-flooder")))
    router = RouterAgent(
        RouterConfig(
            gossip_rate_per_s=rate, gossip_burst=burst, staked_validators=[validator.address]
        )
    )
    flooder = make_host(identity_from_seed(), node_limits())
    gossipsub = GossipSub(
        list(MESHSUB_PROTOCOLS), 6, 4, 12, heartbeat_interval=1, spam_protection_enabled=False
    )
    pubsub = Pubsub(flooder, gossipsub, strict_signing=True)
    frame = encode(RecordBatch((encode_record(sample_record(0)),)))
    topic = protocols.TOPIC_RECORDS
    # gossipsub caches each message it relays onward; count what reaches that cache.
    mcache = router.broadcast.gossipsub.mcache
    cached: list[bytes] = []
    put = mcache.put
    mcache.put = lambda msg: (cached.append(msg.seqno), put(msg))[1]
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(router.run, stop)
            await router.ready.wait()
            await router.broadcast.ready.wait()
            async with flooder.run([]):
                async with background_trio_service(pubsub), background_trio_service(gossipsub):
                    await pubsub.wait_until_ready()
                    await flooder.connect(
                        info_from_p2p_addr(multiaddr.Multiaddr(router.addrs()[0]))
                    )
                    binding = encode_binding(make_binding(validator, flooder.get_id().to_string()))
                    await join_gossip(flooder, router.host.get_id(), binding)
                    # The flooder joined and opened gossipsub: the router answers in kind.
                    await wait_until(
                        lambda: (
                            router.broadcast.is_gossip_peer(flooder.get_id())
                            and router.host.get_id() in pubsub.peer_topics.get(topic, ())
                        ),
                        "gossipsub between the flooder and the router",
                    )
                    started = trio.current_time()
                    outbound = pubsub.peer_queues[router.host.get_id()]
                    for _ in range(flood):
                        # Only as fast as the flooder's own 32-deep send queue takes them.
                        await wait_until(lambda: len(outbound) <= 16, "room in the send queue")
                        await pubsub.publish(topic, frame)  # a fresh seqno makes each distinct
                    bc = router.broadcast
                    await wait_until(
                        lambda: bc.received[topic] + bc.dropped[topic] >= flood,
                        "every flooded message received or dropped",
                    )
                    elapsed = trio.current_time() - started
            stop.set()
    allowed = burst + rate * elapsed
    assert burst <= router.broadcast.received[topic] <= allowed + 1
    assert router.broadcast.dropped[topic] == flood - router.broadcast.received[topic]
    # Only accepted messages were kept for relaying onward.
    assert len(cached) == router.broadcast.received[topic]


def test_token_bucket__burst_then_rate():
    bucket = TokenBucket(rate=10.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.05)  # half a token
    assert bucket.take(0.1)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_config__gossip_on_by_default__rate_must_be_positive():
    assert RouterConfig().gossip
    assert RouterAgent(RouterConfig(gossip=False)).broadcast is None
    with pytest.raises(ValueError):
        RouterConfig(gossip_rate_per_s=0)


def sample_record(index: int) -> InvocationRecord:
    """Return a record signed by a user, a node and a router (keys from fixed seeds)."""
    user, node, router = (generate_keypair(bytes([k]) * 32) for k in (1, 2, 3))
    order = InvocationRequest(user.address, 1, "echo", b"\1" * 32, 10, index, 2**40)
    receipt = Receipt(
        request_digest(order, DOMAIN), b"\2" * 32, 1, 10, node.address, router.address
    )
    record = InvocationRecord(
        order,
        sign_request(user.private_key, order, DOMAIN),
        receipt,
        sign_receipt(node.private_key, receipt, DOMAIN),
        b"",
    )
    return dataclasses.replace(
        record, router_signature=sign_record(router.private_key, record, DOMAIN)
    )


def test_record_batch__round_trip_fits_gossip_limit__empty_or_too_many_refused():
    full = RecordBatch(
        tuple(encode_record(sample_record(i)) for i in range(RecordBatch.MAX_RECORDS))
    )
    frame = encode(full)
    assert len(frame) <= MAX_GOSSIP_BYTES
    msg_type, value = decode_frame(frame, GOSSIP_TYPES)
    assert msg_type == MsgType.RECORDS and RecordBatch.from_map(value) == full
    assert decode_records(frame) == [sample_record(i) for i in range(RecordBatch.MAX_RECORDS)]
    record = encode_record(sample_record(0))
    for bad in ({"records": []}, {"records": [record] * 81}, {"records": [1]},
                {"records": [b"x" * 2_049]}):  # fmt: skip
        with pytest.raises(FrameError):
            RecordBatch.from_map(bad)


async def _gossiping_peer(label: str):
    """Return a host with its own gossipsub, subscribed to the records topic, and its key."""
    host = make_host(identity_from_seed(bytes.fromhex(seed_hex(label + "-p2p"))), node_limits())
    gossipsub = GossipSub(
        list(MESHSUB_PROTOCOLS), 6, 4, 12, heartbeat_interval=1, spam_protection_enabled=False
    )
    pubsub = Pubsub(host, gossipsub, strict_signing=True)
    return host, gossipsub, pubsub, generate_keypair(bytes.fromhex(seed_hex(label)))


async def test_gossip__unstaked_peer__refused_nothing_delivered_or_received__validator_receives():
    stop = trio.Event()
    routers = [eth_address("adm-r1"), eth_address("adm-r2")]
    validator_key = generate_keypair(bytes.fromhex(seed_hex("adm-validator")))
    config = dict(staked_routers=routers, staked_validators=[validator_key.address])
    r1 = RouterAgent(RouterConfig(eth_key_seed=seed_hex("adm-r1"), **config))
    r1.node_links.is_staked = lambda address: True  # the node below is staked for this test
    topic = protocols.TOPIC_RECORDS
    frame = encode(RecordBatch((encode_record(sample_record(99)),)))
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(r1.run, stop)
            await r1.ready.wait()
            r2 = RouterAgent(
                RouterConfig(peers=[r1.addrs()[0]], eth_key_seed=seed_hex("adm-r2"), **config)
            )
            nursery.start_soon(r2.run, stop)
            node = NodeAgent(NodeConfig(routers=[r1.addrs()[0]]))
            nursery.start_soon(node.run, stop)
            await wait_until(
                lambda: r1.table.nodes and r2.broadcast.is_gossip_peer(r1.host.get_id()),
                "the node linked to r1, and r1 a gossip peer of r2",
            )
            r1_info = info_from_p2p_addr(multiaddr.Multiaddr(r1.addrs()[0]))
            outsider, o_sub, o_pub, o_key = await _gossiping_peer("adm-outsider")
            validator, v_sub, v_pub, _key = await _gossiping_peer("adm-validator")
            async with outsider.run([]), validator.run([]):
                async with (
                    background_trio_service(o_pub),
                    background_trio_service(o_sub),
                    background_trio_service(v_pub),
                    background_trio_service(v_sub),
                ):
                    outsider_records = await o_pub.subscribe(topic)
                    validator_records = await v_pub.subscribe(topic)
                    # The outsider connects (its gossipsub opens /meshsub at once) and asks to
                    # join with the binding of an address that is not staked: refused.
                    await outsider.connect(r1_info)
                    binding = encode_binding(make_binding(o_key, outsider.get_id().to_string()))
                    with pytest.raises((FrameError, *NET_ERRORS)):
                        await join_gossip(outsider, r1.host.get_id(), binding)
                    # The validator joins with its staked address's binding: admitted.
                    await validator.connect(r1_info)
                    binding = encode_binding(
                        make_binding(validator_key, validator.get_id().to_string())
                    )
                    assert await join_gossip(validator, r1.host.get_id(), binding)
                    await wait_until(
                        lambda: r1.broadcast.is_gossip_peer(validator.get_id()),
                        "the validator a gossip peer of r1",
                    )
                    assert not r1.broadcast.is_gossip_peer(outsider.get_id())
                    assert outsider.get_id() not in r1.broadcast.admitted
                    # Whatever the outsider publishes goes nowhere: no router takes it.
                    for _ in range(5):
                        await o_pub.publish(topic, frame)
                    # Requests served by r1 yield records that r2 and the validator receive.
                    # Heartbeats graft the validator into r1's mesh for records; then r1
                    # publishes the records of three requests it served.
                    await wait_until(
                        lambda: validator.get_id() in r1.broadcast.gossipsub.mesh.get(topic, ()),
                        "the validator in r1's gossipsub mesh for records",
                    )
                    for i in range(3):
                        r1._record(sample_record(i))
                    with trio.fail_after(30):
                        message = await validator_records.get()
                    assert decode_frame(message.data, GOSSIP_TYPES)[0] == MsgType.RECORDS
                    assert message.from_id == r1.host.get_id().to_bytes()
                    await wait_until(lambda: r2.broadcast.records_received >= 3, "3 records at r2")
                    # The outsider's records reached neither router, and it received nothing.
                    assert r2.broadcast.records_received == 3
                    assert r1.broadcast.records_received == 0
                    outsider_got = []
                    while True:
                        try:
                            outsider_got.append(outsider_records.receive_channel.receive_nowait())
                        except trio.WouldBlock:
                            break
                    # Only its own messages, delivered to itself: nothing of the routers'.
                    assert outsider_got
                    assert {m.from_id for m in outsider_got} == {outsider.get_id().to_bytes()}
                    rejected = r1.metrics.rejected
                    assert rejected.labels(reason="gossip-not-staked")._value.get() >= 1
                    assert rejected.labels(reason="gossip-not-admitted")._value.get() >= 1
            stop.set()
