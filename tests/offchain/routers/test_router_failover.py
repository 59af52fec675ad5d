"""A router killed: its compute nodes move to the other router, and requests keep flowing."""

import signal

import pytest
import trio
from libp2p.peer.id import ID

from offchain.routers.router_client import caller, invoke
from offchain.runtime.spawn import AgentProcess, router_process, seed_hex, stop_all, worker_process
from tests import waiting
from tests.offchain.routers.routernet import (
    eth_address,
    metric,
    one_link_echo_node,
    wait_until,
    wait_until_sync,
)

NODES = ("m1", "m2", "m3")
# The stated bound: with a 0.2 s initial backoff, a 1 s cap and jitter, a node whose router dies
# is linked to the other one well within this.
RECONNECT_BOUND_S = 10.0


@pytest.fixture
def pair(tmp_path):
    processes: list[AgentProcess] = []
    staked = [arg for name in NODES for arg in ("--staked", eth_address(name))]
    staked += [arg for name in ("r3", "r4") for arg in ("--staked-router", eth_address(name))]
    common = ["--metrics-port", "0", "--ping-interval", "1", *staked]

    def keys(name: str) -> list[str]:
        return ["--identity-seed", seed_hex(name), "--eth-key-seed", seed_hex(name)]

    try:
        r3 = router_process(tmp_path, "r3", [*keys("r3"), *common]).start()
        processes.append(r3)
        r3.wait_ready()
        r4 = router_process(
            tmp_path, "r4", [*keys("r4"), "--peer", r3.info["addrs"][0], *common]
        ).start()
        processes.append(r4)
        r4.wait_ready()
        routers = [r3.info["addrs"][0], r4.info["addrs"][0]]
        for name in NODES:
            # One link each, r3 first in the list: every node starts on r3.
            node = worker_process(tmp_path, name, routers, one_link_echo_node(name)).start()
            processes.append(node)
            node.wait_ready()
        wait_until_sync(lambda: metric(r3, "emc_router_nodes") == 3, 60, "3 nodes on r3")
        assert metric(r4, "emc_router_nodes") == 0
        yield r3, r4
    finally:
        stop_all(processes)


async def test_router_killed__nodes_reconnect_to_other_router__requests_keep_flowing(pair):
    r3, r4 = pair
    r4_id = ID.from_base58(r4.info["peer_id"])
    async with caller([r4.info["addrs"][0]]) as host:
        reply = None

        async def answered() -> bool:
            nonlocal reply
            reply = await invoke(host, r4_id, "echo", b"before", 10)
            return reply.ok

        await waiting.wait_until(answered, "r3's summary to reach r4", timeout_s=20)
        assert reply.hops == 1  # r4 has no nodes yet: forwarded to r3

        r3.kill()
        await wait_until(
            lambda: metric(r4, "emc_router_nodes") == 3,
            RECONNECT_BOUND_S,
            "all nodes to reconnect to r4",
        )

        for i in range(10):
            reply = await invoke(host, r4_id, "echo", f"after-{i}".encode(), 10)
            assert reply.ok, reply
            assert reply.output == f"after-{i}".encode()
            assert reply.hops == 0

    # And the surviving router shuts down cleanly on SIGTERM.
    assert r4.proc is not None
    r4.proc.send_signal(signal.SIGTERM)
    code = await trio.to_thread.run_sync(lambda: r4.proc.wait(timeout=10))
    assert code == 0
    assert "router stopping" in r4.log_text()
