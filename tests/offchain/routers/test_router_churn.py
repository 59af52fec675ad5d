"""More than 1,000 distinct peers connect and leave; the router stays up and keeps serving.

py-libp2p's default peer store evicts beyond 1,000 peers and can evict the host's own entry,
which crashed a host after about 1,200 distinct peers (DESIGN.md section 8).
"""

import multiaddr
import pytest
import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from offchain.net.host import identity_from_seed, make_host
from offchain.net.limits import node_limits
from offchain.routers.router_client import caller, invoke
from offchain.runtime.spawn import AgentProcess, router_process, seed_hex, stop_all, worker_process
from tests.offchain.routers.routernet import eth_address, metric, wait_until, wait_until_sync

DISTINCT_PEERS = 1_250
AT_ONCE = 25


@pytest.fixture
def router(tmp_path):
    processes: list[AgentProcess] = []
    try:
        r5 = router_process(
            tmp_path,
            "r5",
            [
                "--identity-seed",
                seed_hex("r5"),
                "--metrics-port",
                "0",
                "--staked",
                eth_address("c1"),
            ],
        ).start()
        processes.append(r5)
        r5.wait_ready()
        node = worker_process(
            tmp_path, "c1", [r5.info["addrs"][0]], ["--eth-key-seed", seed_hex("c1")]
        ).start()
        processes.append(node)
        node.wait_ready()
        wait_until_sync(lambda: metric(r5, "emc_router_nodes") == 1, 60, "the node on r5")
        yield r5
    finally:
        stop_all(processes)


async def test_over_1000_distinct_peers_come_and_go__router_stays_up(router):
    info = info_from_p2p_addr(multiaddr.Multiaddr(router.info["addrs"][0]))
    seen: set[str] = set()
    limiter = trio.Semaphore(AT_ONCE)

    async def visit() -> None:
        async with limiter:
            host = make_host(identity_from_seed(), node_limits())
            async with host.run([]):
                with trio.fail_after(30):
                    await host.connect(info)
                    seen.add(host.get_id().to_string())
                    await host.disconnect(info.peer_id)

    async with trio.open_nursery() as nursery:
        for _ in range(DISTINCT_PEERS):
            nursery.start_soon(visit)

    assert len(seen) == DISTINCT_PEERS
    assert router.alive(), router.log_tail()
    await wait_until(
        lambda: metric(router, "emc_router_connections") <= 2,
        30,
        "the visitors' connections to close",
    )
    # What the departed connections left is collected by the router itself (gc_policy): a
    # quarter of those held, at least 256, have ended.
    await wait_until(
        lambda: metric(router, "emc_router_full_collection_seconds_count") >= 1,
        30,
        "the router's full collection after the churn",
    )
    async with caller([router.info["addrs"][0]]) as host:
        reply = await invoke(host, ID.from_base58(router.info["peer_id"]), "echo", b"alive", 10)
    assert reply.ok and reply.output == b"alive"
