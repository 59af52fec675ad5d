"""A compute node's router links: backoff, and relinking to a router that restarts."""

import socket

import pytest
import trio

from offchain.runtime.spawn import AgentProcess, router_process, seed_hex, stop_all, worker_process
from tests.offchain.routers.routernet import (
    eth_address,
    metric,
    one_link_echo_node,
    wait_until,
    wait_until_sync,
)

# With a 0.2 s initial backoff capped at 1 s, a node redials its router about once a second, so
# it is linked again within a couple of seconds of the router listening. py-libp2p on its own
# refuses to dial a peer for 60 s once all its addresses failed; the node must not wait that out.
RELINK_BOUND_S = 15.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def lone_router(tmp_path):
    """One router on a fixed port and a node linked only to it: (router, start_router, node)."""
    port = _free_port()
    processes: list[AgentProcess] = []
    args = [
        "--identity-seed",
        seed_hex("r9"),
        "--listen",
        f"/ip4/127.0.0.1/tcp/{port}",
        "--metrics-port",
        "0",
        "--ping-interval",
        "1",
        "--staked",
        eth_address("n9"),
    ]

    def start_router() -> AgentProcess:
        router = router_process(tmp_path, "r9", args).start()
        processes.append(router)
        router.wait_ready()
        return router

    try:
        router = start_router()
        node = worker_process(
            tmp_path,
            "n9",
            [router.info["addrs"][0]],
            one_link_echo_node("n9"),
        ).start()
        processes.append(node)
        node.wait_ready()
        wait_until_sync(lambda: metric(router, "emc_router_nodes") == 1, 30, "node linked")
        yield router, start_router, node
    finally:
        stop_all(processes)


async def test_router_restarted__node_relinks_without_waiting_out_the_dial_lockout(lone_router):
    router, start_router, node = lone_router
    router.kill()
    # Several failed redials: each marks the router as failed in py-libp2p.
    await wait_until(
        lambda: node.log_text().count("dial of router") >= 3, 60, "three failed redials"
    )
    assert "dial of router" in node.log_text()
    restarted = await trio.to_thread.run_sync(start_router)
    # Within RELINK_BOUND_S, well under py-libp2p's 60 s lockout.
    await wait_until(
        lambda: metric(restarted, "emc_router_nodes") == 1,
        RELINK_BOUND_S,
        "node to relink to the router",
    )
    assert node.alive()
