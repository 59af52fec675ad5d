"""A compute node process: no listening port, and work only on the links it opened."""

import psutil
import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from offchain.net.streams import NET_ERRORS
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.wire import Request, encode
from offchain.routers.router_client import caller, invoke
from offchain.runtime.spawn import AgentProcess, router_process, seed_hex, stop_all, worker_process
from tests.offchain.routers.routernet import eth_address, metric, wait_until_sync


@pytest.fixture
def linked(tmp_path):
    processes: list[AgentProcess] = []
    try:
        router = router_process(
            tmp_path,
            "r6",
            ["--metrics-port", "0", "--staked", eth_address("w1"), "--staked", eth_address("w2")],
        ).start()
        processes.append(router)
        router.wait_ready()
        addr = router.info["addrs"][0]
        quiet = worker_process(tmp_path, "w1", [addr], ["--eth-key-seed", seed_hex("w1")])
        listening = worker_process(
            tmp_path,
            "w2",
            [addr],
            [
                "--eth-key-seed",
                seed_hex("w2"),
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--workload",
                "echo-w2=echo",
            ],
        )
        for node in (quiet, listening):
            processes.append(node.start())
            node.wait_ready()
        wait_until_sync(lambda: metric(router, "emc_router_nodes") == 2, 60, "2 nodes on r6")
        yield router, quiet, listening
    finally:
        stop_all(processes)


def _listening_ports(pid: int) -> list[int]:
    return [
        c.laddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    ]


async def test_node__linked_and_serving__listens_on_no_port(linked):
    router, quiet, _listening = linked
    assert _listening_ports(quiet.pid) == []
    async with caller([router.info["addrs"][0]]) as host:
        reply = await invoke(host, ID.from_base58(router.info["peer_id"]), "echo", b"hi", 10)
    assert reply.ok and reply.node == quiet.info["peer_id"]


@pytest.mark.parametrize(
    "protocol", [protocols.NODE_CONTROL, protocols.INVOKE, TProtocol("/emc/work/2.0.0")]
)
async def test_node__stranger_opens_a_stream__no_protocol_served(linked, protocol):
    """Routers send work on the node's own link streams; the node serves no stream to anyone."""
    router, _quiet, listening = linked
    ports = _listening_ports(listening.pid)
    assert len(ports) == 1  # it listens because it was configured to
    target = f"/ip4/127.0.0.1/tcp/{ports[0]}/p2p/{listening.info['peer_id']}"
    async with caller([target]) as stranger:
        with trio.fail_after(15):
            try:
                stream = await stranger.new_stream(
                    ID.from_base58(listening.info["peer_id"]), [protocol]
                )
                await stream.write(encode(Request(b"s" * 16, "echo-w2", b"let me in")))
                refused = await stream.read(1) == b""
            except NET_ERRORS:  # the node supports no such protocol
                refused = True
        assert refused
    async with caller([router.info["addrs"][0]]) as host:
        reply = await invoke(host, ID.from_base58(router.info["peer_id"]), "echo-w2", b"ok", 10)
    assert reply.ok and reply.node == listening.info["peer_id"]  # its own router still can
