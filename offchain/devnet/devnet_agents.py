"""The devnet's router and compute node processes: starting them, and waiting until they link.

Each agent's libp2p identity comes from a seed of its name; whether it is up, linked and meshed
is read from the gauges on its metrics endpoint.
"""

import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from libp2p.peer.id import ID
from prometheus_client.parser import text_string_to_metric_families

from offchain.chain.anvil import free_port
from offchain.devnet.devnet_chain import Actor, agent_seed
from offchain.devnet.devnet_params import (
    AGENT_READY_TIMEOUT_S,
    COMPUTE_NODES,
    DEMO_WORKLOADS,
    LINK_TIMEOUT_S,
    ROUTERS,
)
from offchain.net.host import identity_from_seed
from offchain.runtime.spawn import AgentProcess, router_process, seed_hex, stop_all, worker_process


def _identity_seed(name: str) -> str:
    return seed_hex(f"devnet-{name}-libp2p")


def _peer_id(name: str) -> str:
    key_pair = identity_from_seed(bytes.fromhex(_identity_seed(name)))
    return ID.from_pubkey(key_pair.public_key).to_string()


@dataclass
class DevnetAgents:
    """The devnet's router and compute node processes, by actor name."""

    workdir: Path
    routers: dict[str, AgentProcess]
    nodes: dict[str, AgentProcess]
    router_addrs: dict[str, str]

    @property
    def processes(self) -> list[AgentProcess]:
        """Return every agent process, compute nodes first."""
        return [*self.nodes.values(), *self.routers.values()]

    def node_by_peer(self) -> dict[str, str]:
        """Return node actor names by the peer id each node reported when ready."""
        return {process.info["peer_id"]: name for name, process in self.nodes.items()}

    def stop(self) -> None:
        """Stop every agent (SIGTERM, then SIGKILL for any that hangs)."""
        stop_all(self.processes)


def read_gauge(process: AgentProcess, name: str) -> int:
    """Return the value of the gauge ``name`` on the agent's metrics endpoint (0 if absent)."""
    url = f"http://127.0.0.1:{process.info['metrics_port']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return int(sample.value)
    return 0


def _router_nodes(process: AgentProcess, gauge: str = "emc_router_nodes") -> int:
    """Return how many compute nodes the router holds now (or holds as staked)."""
    return read_gauge(process, gauge)


def _holds_staked_nodes(process: AgentProcess) -> bool:
    """Return whether the router holds every compute node, each as staked."""
    return _router_nodes(process, "emc_router_staked_nodes") >= COMPUTE_NODES


def _own_session(process: AgentProcess) -> AgentProcess:
    """Keep a terminal's Ctrl-C from the agent: the devnet stops it, with one SIGTERM."""
    process.own_session = True
    return process


def _meshed(router: AgentProcess, others: Sequence[str]) -> bool:
    """Return whether the router has a mesh link up with as many routers as ``others``.

    A router counts a link (``emc_router_mesh_peers``) only once it has admitted the other end
    as a staked router, and the devnet's routers are the only staked ones on its chain.
    """
    return read_gauge(router, "emc_router_mesh_peers") >= len(others)


def start_agents(workdir: Path, rpc_url: str, chain_id: int) -> DevnetAgents:
    """Launch the routers and compute nodes (not waiting for them) with logs in ``workdir``.

    The routers read stake from the chain at ``rpc_url`` (``--chain-rpc``); their config stakes
    nobody, so every node they hold as staked, every router they admit to the mesh and every
    validator they admit to gossip is staked on-chain. They serve signed orders only, checked
    against the chain's market (``--check-invocations``); the nodes price and sign receipts
    under the same deployment. The routers start first and listen within seconds; the nodes,
    slower to start (PyTorch, Numba), dial them once up.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in [*workdir.glob("*.json"), *workdir.glob("*.tmp"), *workdir.glob("*.log")]:
        stale.unlink()
    names = [f"router-{i}" for i in range(ROUTERS)]
    addrs = {name: f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{_peer_id(name)}" for name in names}
    chain_args = ["--chain-rpc", rpc_url, "--deployment", "local", "--chain-id", str(chain_id)]
    routers: dict[str, AgentProcess] = {}
    nodes: dict[str, AgentProcess] = {}
    agents = DevnetAgents(workdir, routers, nodes, addrs)
    try:
        for name in names:
            args = [
                "--listen", addrs[name].rsplit("/p2p/", 1)[0],
                "--identity-seed", _identity_seed(name),
                "--eth-key-seed", agent_seed(name),
                "--metrics-port", "0",
                "--check-invocations",
                *chain_args,
            ]  # fmt: skip
            for other in names:  # every router dials the others: the later one gets through
                if other != name:
                    args += ["--peer", addrs[other]]
            routers[name] = _own_session(router_process(workdir, name, args)).start()
        for i, workloads in enumerate(DEMO_WORKLOADS):
            name = f"compute-{i}"
            args = [
                "--links", str(ROUTERS),
                "--identity-seed", _identity_seed(name),
                "--eth-key-seed", agent_seed(name),
                *chain_args,
            ]  # fmt: skip
            for workload in workloads:
                args += ["--workload", workload]
            node = worker_process(workdir, name, list(addrs.values()), args)
            nodes[name] = _own_session(node).start()
    except BaseException:
        agents.stop()
        raise
    return agents


def wait_for_agents(agents: DevnetAgents, actors: Sequence[Actor]) -> None:
    """Return once every agent is up, bound to its staked address, and linked.

    Raises if an agent exits, binds to another address than its actor's, or if a router does
    not hold every compute node as staked in time.
    """
    accounts = {actor.name: actor.account.address for actor in actors}
    for name, process in {**agents.routers, **agents.nodes}.items():
        info = process.wait_ready(AGENT_READY_TIMEOUT_S)
        if info["peer_id"] != _peer_id(name):
            raise RuntimeError(f"{name} runs as {info['peer_id']}, expected {_peer_id(name)}")
        if info.get("address") != accounts[name]:
            raise RuntimeError(f"{name} binds {info.get('address')}, staked {accounts[name]}")
    deadline = time.monotonic() + LINK_TIMEOUT_S
    for name, router in agents.routers.items():
        others = [p.info["peer_id"] for other, p in agents.routers.items() if other != name]
        while not _holds_staked_nodes(router) or not _meshed(router, others):
            if not router.alive() or time.monotonic() > deadline:
                raise TimeoutError(
                    f"{name} holds {_router_nodes(router) if router.alive() else 0} of "
                    f"{COMPUTE_NODES} compute nodes "
                    f"({_router_nodes(router, 'emc_router_staked_nodes')} staked), mesh links "
                    f"to {len(others)} routers "
                    f"{'up' if _meshed(router, others) else 'not all up'}:\n{router.log_tail()}"
                )
            time.sleep(0.1)
