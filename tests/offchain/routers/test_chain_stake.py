"""Routers that read stake from the chain: anvil with the deployed contracts, agents in-process."""

import logging
import subprocess
import sys

import trio

from offchain.crypto.keys import generate_keypair
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER
from offchain.routers.agent import RouterAgent
from offchain.routers.config import RouterConfig
from offchain.runtime.spawn import seed_hex
from offchain.workers.node import NodeAgent, NodeConfig
from tests.offchain.routers.routernet import mesh_links
from tests.waiting import wait_until


async def until(check, what: str, timeout_s: float = 15.0) -> None:
    await wait_until(check, what, timeout_s)


def chain_config(chain, label: str, **kwargs) -> RouterConfig:
    return RouterConfig(
        eth_key_seed=seed_hex(label),
        chain_rpc=chain.anvil.url,
        deployment=str(chain.record),
        chain_id=31337,
        # Changes reach the router through the Staking events alone: no sweep in these tests.
        stake_follow_s=0.1,
        stake_refresh_s=3600,
        summary_interval_s=0.2,
        **kwargs,
    )


def account_of(chain, label: str):
    """Return the funded account of the key an agent started with ``seed_hex(label)`` uses."""
    return chain.account(generate_keypair(bytes.fromhex(seed_hex(label))).private_key)


def node(router: RouterAgent, label: str) -> NodeAgent:
    return NodeAgent(NodeConfig(routers=[router.addrs()[0]], links=1, eth_key_seed=seed_hex(label)))


def staked_nodes(router: RouterAgent) -> float | None:
    return router.metrics.registry.get_sample_value("emc_router_staked_nodes")


def staked_in_table(router: RouterAgent, address: str) -> bool | None:
    entries = [e for e in router.table.nodes.values() if e.address == address]
    return entries[0].staked if entries else None


async def test_router__chain_view__nodes_marked_by_onchain_stake_and_remarked_on_change(chain):
    staked, unstaked = account_of(chain, "chain-node-s"), account_of(chain, "chain-node-u")
    chain.stake(staked, ROLE_COMPUTE)
    router = RouterAgent(chain_config(chain, "chain-router"))
    assert router.stake is not None
    stop = trio.Event()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(router.run, stop)
            await router.ready.wait()
            for label in ("chain-node-s", "chain-node-u"):
                nursery.start_soon(node(router, label).run, stop)
            await until(lambda: len(router.table.nodes) == 2, "both nodes to link")
            # Marked at join from the chain, neither listed in the config.
            assert staked_in_table(router, staked.address) is True
            assert staked_in_table(router, unstaked.address) is False
            assert staked_nodes(router) == 1

            # Stake changes on-chain; the events re-mark the linked nodes.
            chain.unstake(staked)
            chain.stake(unstaked, ROLE_COMPUTE)
            await until(lambda: staked_in_table(router, staked.address) is False, "unstaked")
            await until(lambda: staked_in_table(router, unstaked.address) is True, "staked")
            assert staked_nodes(router) == 1
            stop.set()


async def test_router__neighbour_router_unstakes__mesh_link_dropped(chain, caplog):
    caplog.set_level(logging.INFO)
    for label in ("chain-mesh-a", "chain-mesh-b"):
        chain.stake(account_of(chain, label), ROLE_ROUTER)
    a = RouterAgent(chain_config(chain, "chain-mesh-a"))
    stop = trio.Event()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.run, stop)
            await a.ready.wait()
            b = RouterAgent(chain_config(chain, "chain-mesh-b", peers=[a.addrs()[0]]))
            nursery.start_soon(b.run, stop)
            await until(lambda: b.me in a.mesh.links and a.me in b.mesh.links, "the mesh link")
            # Admitted at once: each waited for the chain's answer about the other.
            assert mesh_links(a, "refused") == 0 and mesh_links(b, "refused") == 0

            chain.unstake(account_of(chain, "chain-mesh-b"))
            await until(lambda: mesh_links(a, "unstaked") >= 1, "A to drop B")
            await until(lambda: b.me not in a.mesh.links, "B gone from A's mesh")
            dropped = f"dropped mesh link with router {b.me}"
            assert any(dropped in r.getMessage() for r in caplog.records)
            stop.set()


def test_emc_router__wrong_chain_id__refuses_to_start_with_a_clear_error(chain):
    argv = [sys.executable, "-m", "offchain.routers", "--chain-rpc", chain.anvil.url]
    argv += ["--deployment", str(chain.record), "--chain-id", "1"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {chain.anvil.url} is chain 31337, but chain 1 is configured"
    )
