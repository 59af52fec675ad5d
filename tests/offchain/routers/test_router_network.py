"""Two routers and seven compute nodes in separate processes, on loopback."""

import struct
from dataclasses import dataclass

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.custom_types import TProtocol
from libp2p.network.exceptions import SwarmException
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.security.secio.transport import ID as SECIO_ID
from libp2p.security.secio.transport import Transport as SecioTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from offchain.net.host import identity_from_seed
from offchain.net.streams import NET_ERRORS
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.frames import FRAME_VERSION, MsgType
from offchain.protocol.wire import Request, encode
from offchain.routers.router_client import caller, invoke, new_request_id
from offchain.runtime.spawn import AgentProcess, router_process, seed_hex, stop_all, worker_process
from tests import waiting
from tests.offchain.routers.routernet import eth_address, metric, wait_until, wait_until_sync

NODES = {
    # name: (routers, links, workloads)
    "n1": (("r1", "r2"), 2, ("echo", "sleep")),
    "n2": (("r1", "r2"), 2, ("echo", "sleep")),
    "n3": (("r1",), 1, ("echo", "sleep")),
    "n4": (("r2",), 1, ("echo-b=echo", "sleep")),
    "n5": (("r2",), 1, ("echo-b=echo", "sleep")),
    "n6": (("r1",), 1, ("slow=sleep",)),
    "n7": (("r1",), 1, ("slow=sleep",)),
}


@dataclass
class Net:
    routers: dict[str, AgentProcess]
    nodes: dict[str, AgentProcess]

    def addr(self, router: str) -> str:
        return self.routers[router].info["addrs"][0]

    def peer(self, name: str) -> str:
        process = self.routers.get(name) or self.nodes[name]
        return process.info["peer_id"]

    def names_of(self, peer_ids) -> set[str]:
        by_id = {p.info["peer_id"]: n for n, p in self.nodes.items()}
        return {by_id[p] for p in peer_ids}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    work = tmp_path_factory.mktemp("routernet")
    processes: list[AgentProcess] = []
    staked = [arg for name in NODES for arg in ("--staked", eth_address(name))]
    staked += [arg for name in ("r1", "r2") for arg in ("--staked-router", eth_address(name))]
    common = ["--metrics-port", "0", "--read-timeout", "3", "--ping-interval", "1", *staked]

    def keys(name: str) -> list[str]:
        return ["--identity-seed", seed_hex(name), "--eth-key-seed", seed_hex(name)]

    try:
        r1 = router_process(work, "r1", [*keys("r1"), *common]).start()
        processes.append(r1)
        r1.wait_ready()
        r2 = router_process(
            work, "r2", [*keys("r2"), "--peer", r1.info["addrs"][0], *common]
        ).start()
        processes.append(r2)
        r2.wait_ready()
        routers = {"r1": r1, "r2": r2}
        nodes = {}
        for name, (linked, links, workloads) in NODES.items():
            args = ["--links", str(links), "--eth-key-seed", seed_hex(name), "--metrics-port", "0"]
            for workload in workloads:
                args += ["--workload", workload]
            node = worker_process(work, name, [routers[r].info["addrs"][0] for r in linked], args)
            processes.append(node.start())
            nodes[name] = node
        for node in nodes.values():
            node.wait_ready()
        wait_until_sync(lambda: metric(r1, "emc_router_nodes") == 5, 60, "5 nodes on r1")
        wait_until_sync(lambda: metric(r2, "emc_router_nodes") == 4, 60, "4 nodes on r2")
        yield Net(routers, nodes)
    finally:
        stop_all(processes)


async def test_requests__routed__each_answer_returns_to_its_own_caller(net):
    results: list[tuple[str, str, bytes, object]] = []

    async def one_caller(tag: str) -> None:
        async with caller([net.addr("r1"), net.addr("r2")]) as host:
            async with trio.open_nursery() as nursery:
                for i in range(12):
                    router = "r1" if i % 2 else "r2"
                    payload = f"{tag}:{i}".encode()

                    async def call(router=router, payload=payload) -> None:
                        reply = await invoke(
                            host, ID.from_base58(net.peer(router)), "echo", payload, timeout_s=20
                        )
                        results.append((tag, router, payload, reply))

                    nursery.start_soon(call)

    async with trio.open_nursery() as nursery:
        for tag in ("alice", "bob", "carol"):
            nursery.start_soon(one_caller, tag)

    assert len(results) == 36
    for _tag, router, payload, reply in results:
        assert reply.ok, reply
        assert reply.output == payload
        assert reply.hops == 0
        allowed = {"n1", "n2", "n3"} if router == "r1" else {"n1", "n2"}
        assert net.names_of([reply.node]) <= allowed
    assert len(net.names_of(r.node for *_, r in results)) >= 2


async def test_request__workload_only_other_routers_nodes_serve__forwarded(net):
    async with caller([net.addr("r1")]) as host:
        r1 = ID.from_base58(net.peer("r1"))
        reply = None

        async def forwarded() -> bool:
            nonlocal reply
            reply = await invoke(host, r1, "echo-b", b"across the mesh", timeout_s=10)
            return reply.ok

        await waiting.wait_until(forwarded, "r2's summary to reach r1", timeout_s=20)
        assert reply.output == b"across the mesh"
        assert reply.hops == 1
        assert net.names_of([reply.node]) <= {"n4", "n5"}


async def test_request__workload_nobody_serves__clear_error(net):
    async with caller([net.addr("r1")]) as host:
        reply = await invoke(host, ID.from_base58(net.peer("r1")), "no-such-work", b"", 10)
    assert not reply.ok
    assert reply.error == "no-node"
    assert "no-such-work" in reply.message


async def test_bad_streams__dropped_with_logged_reason__router_keeps_serving(net):
    r1 = ID.from_base58(net.peer("r1"))
    bad = {
        "cbor-indefinite": struct.pack(">BBI", FRAME_VERSION, MsgType.REQUEST, 4)
        + b"\xff\x00\xff\x00",
        "oversized": struct.pack(">BBI", FRAME_VERSION, MsgType.REQUEST, 64 * 1024 * 1024),
        "unknown-version": bytes([FRAME_VERSION + 7]) + encode(Request(b"r" * 16, "echo", b""))[1:],
        "timeout": b"",  # opens the stream and never writes
    }
    ended: dict[str, bool] = {}

    async def misbehave(host, reason: str, data: bytes) -> None:
        stream = await host.new_stream(r1, [protocols.INVOKE])
        if data:
            await stream.write(data)
        with trio.fail_after(10):
            try:
                leftover = await stream.read(1)
                ended[reason] = leftover == b""
            except NET_ERRORS:
                ended[reason] = True

    async with caller([net.addr("r1")]) as host:
        async with trio.open_nursery() as nursery:
            for reason, data in bad.items():
                nursery.start_soon(misbehave, host, reason, data)
            # While the silent stream is still held open, others are served.
            reply = await invoke(host, r1, "echo", b"still serving", timeout_s=10)
            assert reply.ok and reply.output == b"still serving"
    assert ended == {reason: True for reason in bad}
    log = net.routers["r1"].log_text()
    for reason in bad:
        assert f"reason={reason}" in log
    assert net.routers["r1"].alive()


def _host_with_only(security: str):
    key_pair = identity_from_seed()
    if security == "plaintext":
        sec = {TProtocol(PLAINTEXT_PROTOCOL_ID): InsecureTransport(key_pair)}
    else:
        sec = {TProtocol(SECIO_ID): SecioTransport(key_pair)}
    return new_host(key_pair=key_pair, sec_opt=sec, muxer_opt={TProtocol(YAMUX_ID): Yamux})


@pytest.mark.parametrize("security", ["plaintext", "secio"])
async def test_peer_offering_only_plaintext_or_secio__cannot_connect(net, security):

    host = _host_with_only(security)
    info = info_from_p2p_addr(multiaddr.Multiaddr(net.addr("r1")))
    async with host.run([]):
        with pytest.raises(SwarmException):
            with trio.fail_after(15):
                await host.connect(info)
                # Some versions report the failed upgrade only on first use.
                await host.new_stream(info.peer_id, [protocols.INVOKE])
        assert not host.get_network().get_connections(info.peer_id)


async def test_metrics__prometheus_endpoint__counts_connections_requests_latency(net):
    r1 = net.routers["r1"]
    assert metric(r1, "emc_router_connections") >= 5
    assert metric(r1, "emc_router_mesh_links_total", '{outcome="admitted"}') >= 1
    assert metric(r1, "emc_router_requests_total", '{outcome="ok"}') >= 1
    assert metric(r1, "emc_router_request_seconds_count") >= 1
    assert metric(net.nodes["n1"], "emc_worker_nodes") == 2  # linked to both routers


async def test_node_killed_mid_request__retried_on_another_node(net):
    request_id = new_request_id()
    slow_nodes = {name: net.nodes[name] for name in ("n6", "n7")}
    reply = None

    async def call(host) -> None:
        nonlocal reply
        reply = await invoke(
            host,
            ID.from_base58(net.peer("r1")),
            "slow",
            b"1500:job",
            timeout_s=20,
            request_id=request_id,
        )

    async with caller([net.addr("r1")]) as host:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, host)
            marker = f"task start request={request_id.hex()}"
            await wait_until(
                lambda: any(marker in p.log_text() for p in slow_nodes.values()),
                10,
                "the slow task to start on a node",
            )
            victim = next(n for n, p in slow_nodes.items() if marker in p.log_text())
            slow_nodes[victim].kill()
    assert reply is not None and reply.ok, reply
    assert reply.output == b"1500:job"
    survivor = ({"n6", "n7"} - {victim}).pop()
    assert net.names_of([reply.node]) == {survivor}
    assert "retrying elsewhere" in net.routers["r1"].log_text()


async def test_router_not_staked_as_router__refused_as_mesh_neighbour(net, tmp_path):
    # A node's stake does not make a router: "n1" is staked, but as a compute node.
    r1 = net.routers["r1"]
    before = metric(r1, "emc_router_mesh_links_total", '{outcome="refused"}')
    args = ["--identity-seed", seed_hex("ru"), "--eth-key-seed", seed_hex("n1")]
    args += ["--metrics-port", "0", "--peer", net.addr("r1"), "--staked-router", eth_address("r1")]
    ru = router_process(tmp_path, "ru", args).start()
    try:
        await trio.to_thread.run_sync(ru.wait_ready)
        refused = (
            f"refused mesh link with router {ru.info['peer_id']}: "
            f"reason=summary-unstaked-origin (origin {ru.info['peer_id']} is bound to "
            f"{eth_address('n1')}, not a staked router)"
        )
        await wait_until(lambda: refused in r1.log_text(), 20, "r1 to refuse the unstaked router")
        assert metric(r1, "emc_router_mesh_links_total", '{outcome="refused"}') > before
        assert f"router {ru.info['peer_id']} up" not in r1.log_text()
        # r1 told it nothing: it never took r1's summary, so it has no route through r1.
        assert f"router {net.peer('r1')} up" not in ru.log_text()
        async with caller([ru.info["addrs"][0]]) as host:
            reply = await invoke(host, ID.from_base58(ru.info["peer_id"]), "echo", b"", 10)
        assert not reply.ok and reply.error == "no-node"
    finally:
        stop_all([ru])
