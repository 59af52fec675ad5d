"""Mesh membership on loopback: only staked routers become neighbours.

Routers run in-process (real libp2p hosts on 127.0.0.1).
"""

import logging

import pytest
import trio
from libp2p.peer.id import ID

from offchain.net.spawn import seed_hex
from offchain.routers import mesh as meshlib
from offchain.routers.agent import RouterAgent
from offchain.routers.client import caller, invoke
from offchain.routers.config import RouterConfig
from offchain.workers.node import NodeAgent, NodeConfig
from tests.offchain.routers.routernet import (
    agent_errors,
    eth_address,
    mesh_links,
)


def config(label: str, staked_routers: list[str], **kwargs) -> RouterConfig:
    return RouterConfig(
        summary_interval_s=0.2,
        eth_key_seed=seed_hex(label),
        staked_routers=staked_routers,
        **kwargs,
    )


def logged(caplog, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


async def until(check, what: str, timeout_s: float = 10.0) -> None:
    with trio.move_on_after(timeout_s):
        while not check():
            await trio.sleep(0.05)
        return
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


async def test_unstaked_router__not_a_neighbour_nor_next_hop__relayed_summaries_refused(caplog):
    caplog.set_level(logging.INFO)
    staked = [eth_address("stake-a"), eth_address("stake-b")]
    stop = trio.Event()
    a = RouterAgent(config("stake-a", staked))
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.run, stop)
            await a.ready.wait()
            # B's view of stake includes U; A's does not (views may disagree).
            wider = [*staked, eth_address("stake-u")]
            b = RouterAgent(config("stake-b", wider, peers=[a.addrs()[0]]))
            nursery.start_soon(b.run, stop)
            await b.ready.wait()
            u = RouterAgent(
                config(
                    "stake-u",
                    wider,
                    peers=[a.addrs()[0], b.addrs()[0]],
                    staked=[eth_address("stake-node")],
                )
            )
            nursery.start_soon(u.run, stop)
            await u.ready.wait()
            node = NodeAgent(
                NodeConfig(
                    routers=[u.addrs()[0]],
                    workloads=["only-u=echo"],
                    eth_key_seed=seed_hex("stake-node"),
                )
            )
            nursery.start_soon(node.run, stop)

            def b_takes_u() -> bool:
                held = b.mesh.summaries.get(u.me)
                return (
                    u.me in b.mesh.links and held is not None and "only-u" in held.summary.workloads
                )

            relayed = f"dropped summary relayed by {b.me}: reason=summary-unstaked-origin"
            await until(b_takes_u, "B to take U as a neighbour serving only-u")
            await until(lambda: logged(caplog, relayed) >= 4, "A to refuse U's relayed summaries")
            await until(lambda: b.me in a.mesh.links, "A to measure its link to B")

            # A refused U as a neighbour, for U's stake, and holds nothing of U.
            refusal = f"refused mesh link with router {u.me}: reason=summary-unstaked-origin"
            assert logged(caplog, refusal) >= 1
            assert mesh_links(a, "refused") >= 1
            assert agent_errors(a, "summary-unstaked-origin") >= 4
            assert u.me not in a.mesh.summaries and u.me not in a.mesh.links
            assert u.me not in a.mesh.seen
            assert b.me in a.mesh.summaries

            # U is not a next hop for A, while B (which takes U) forwards to it.
            async with caller([a.addrs()[0], b.addrs()[0]]) as host:
                via_a = await invoke(host, ID.from_base58(a.me), "only-u", b"x", timeout_s=10)
                via_b = await invoke(host, ID.from_base58(b.me), "only-u", b"y", timeout_s=10)
            assert not via_a.ok and via_a.error == "no-node", via_a
            assert via_b.ok and via_b.hops == 1 and via_b.output == b"y", via_b
            assert meshlib.next_hop(a.mesh, "only-u", trio.current_time()) is None
            stop.set()
