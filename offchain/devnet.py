"""`emc devnet`: the whole network on one machine, from a bare checkout.

It starts a local anvil, deploys and wires the contracts, and brings the devnet's actors
on-chain: 4 validators (staked, BLS keys registered with proofs of possession), 2 routers and 3
compute nodes (staked, capabilities declared). The routers and compute nodes also run as real
agent processes on loopback (``python -m offchain.routers`` and ``python -m
offchain.workers``, logs and ready files in the devnet's work directory): the two routers
mesh with each other, each compute node dials out to both routers and serves its
``DEMO_WORKLOADS``, and the routers read who is staked from the Staking contract
(``--chain-rpc``), as a real network's routers do: nothing is staked in their config. Each
agent's Ethereum key comes from its ``--eth-key-seed``, and the devnet stakes from that same
key, so the address a router or node proves in its identity binding is the address staked
on-chain. The agents start once the contracts are deployed and the actors staked (a router
checks the chain and reads the deployment record at start-up), each in a session of its own,
and ``Devnet.stop()`` stops them (one SIGTERM each) before anvil.

Then it runs demo traffic through the network and on through settlement: a user escrows EMC, a
caller sends ``matmul-f32`` requests to the routers (alternating between them), the routers pick
the nodes that run them, and the caller checks every answer with the workload's verifier. Each
batch is built from what happened (the node that served each request, the router that routed
it), committed on-chain under the validators' aggregate BLS seal, and the nodes, routers and
validators claim what they earned. In a real network validators build the batches from the
records routers gossip and agree on them with IBFT; those validator agents join here when they
land. Until then the devnet builds each batch from the caller's view and seals it itself.
"""

import logging
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trio
from eth_account import Account
from eth_account.signers.local import LocalAccount
from libp2p.peer.id import ID
from prometheus_client.parser import text_string_to_metric_families

from offchain.chain.anvil import REPO_ROOT, Anvil, free_port, start_anvil
from offchain.chain.chain_client import ChainClient, devnet_account
from offchain.chain.deploy import deploy_contracts
from offchain.chain.settlement import claim_rewards, submit_commit
from offchain.crypto import bls
from offchain.crypto.keys import generate_keypair
from offchain.net.host import identity_from_seed
from offchain.protocol.commit import Commit, signers_bitmap
from offchain.protocol.ledger import Invocation, Ledger, batch_root, record_hash
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER, ROLE_VALIDATOR, ROLES
from offchain.protocol.wire import Response
from offchain.routers.router_client import RouterClient, caller
from offchain.runtime.spawn import AgentProcess, router_process, seed_hex, stop_all, worker_process
from offchain.workers.workloads import decode, digest, encode, get_workload

log = logging.getLogger(__name__)

EMC = 10**18
VALIDATORS, ROUTERS, COMPUTE_NODES = 4, 2, 3
# Every node serves matmul-f32, which the demo traffic runs, plus one more workload.
DEMO_WORKLOADS = (
    ["matmul-f32", "matmul-modp"],
    ["matmul-f32", "mlp-infer"],
    ["matmul-f32", "nbody-step"],
)
USER_INDEX = 11
ESCROW = 100 * EMC
PRICE_PER_UNIT = EMC // 100  # 0.01 EMC per metered compute unit
EMISSION_POOL = 100_000 * EMC
CONSENSUS_REWARD_POOL = 10_000 * EMC
DEMO_BATCHES = 3
INVOCATIONS_PER_BATCH = 4
DEMO_WORKLOAD = "matmul-f32"
DEMO_SIZE = 64  # the demo multiplies 64 x 64 matrices: one metered unit each
# Where `emc devnet` keeps its agents' logs and ready files (git-ignored), unless told otherwise.
DEFAULT_WORKDIR = REPO_ROOT / ".emc" / "devnet"
# Compute nodes import PyTorch and Numba before they report ready; slow on a busy machine.
AGENT_READY_TIMEOUT_S = 120.0
LINK_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0
ETH_FOR_GAS = 100 * 10**18


@dataclass
class Actor:
    """One devnet participant: its account, role and what it cost to bring it on-chain."""

    name: str
    role: int
    account: LocalAccount
    stake: int
    gas: dict[str, int] = field(default_factory=dict)
    bls_secret: int | None = None


@dataclass(frozen=True)
class Served:
    """One demo request as it happened: who routed it, who ran it, what it is billed."""

    height: int
    index: int
    router: str  # the router the caller sent it to (credited for routing it)
    node: str  # the compute node actor's name
    node_peer_id: str  # Response.node: the libp2p peer id of the node that ran it
    node_address: str  # that node's staked address (from its ready file)
    units: int
    output_hash: bytes
    hops: int


@dataclass
class SettlementReport:
    """What the demo traffic settled: per batch, each request, and what each account claimed."""

    batches: list[dict] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)
    claimed: dict[str, int] = field(default_factory=dict)
    validator_rewards: dict[str, int] = field(default_factory=dict)


def agent_seed(name: str) -> str:
    """Return the 64-hex-digit Ethereum key seed of the devnet agent ``name``."""
    return seed_hex(f"devnet-{name}")


def agent_account(name: str) -> LocalAccount:
    """Return the account of agent ``name``: the key its ``--eth-key-seed`` derives."""
    keypair = generate_keypair(bytes.fromhex(agent_seed(name)))
    return Account.from_key(keypair.private_key)


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
    nobody, so every node they hold as staked, and every router they admit to the mesh, is
    staked on-chain. They start first and listen within seconds; the nodes, slower to start
    (PyTorch, Numba), dial them once up.
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


def _fund_and_stake(chain: ChainClient, deployer: LocalAccount, actor: Actor) -> None:
    token, staking = chain["EMCToken"], chain["Staking"]
    chain.transact(deployer, token.functions.transfer(actor.account.address, actor.stake))
    chain.transact(actor.account, token.functions.approve(staking.address, actor.stake))
    actor.gas["stake"] = chain.transact(
        actor.account, staking.functions.stake(actor.role, actor.stake)
    ).gas_used


def bring_actors_on_chain(chain: ChainClient) -> list[Actor]:
    """Stake every devnet actor, register validator keys and declare compute nodes.

    Validators use the anvil mnemonic's accounts; routers and compute nodes use the accounts
    their agents' ``--eth-key-seed`` derives (funded with ETH for gas here).
    """
    deployer = devnet_account(0)
    staking = chain["Staking"]
    minimum = {role: staking.functions.min_stake(role).call() for role in ROLES}
    actors = [
        Actor(f"validator-{i}", ROLE_VALIDATOR, devnet_account(1 + i), minimum[ROLE_VALIDATOR])
        for i in range(VALIDATORS)
    ]
    actors += [
        Actor(f"router-{i}", ROLE_ROUTER, agent_account(f"router-{i}"), minimum[ROLE_ROUTER])
        for i in range(ROUTERS)
    ]
    actors += [
        Actor(f"compute-{i}", ROLE_COMPUTE, agent_account(f"compute-{i}"), minimum[ROLE_COMPUTE])
        for i in range(COMPUTE_NODES)
    ]
    for actor in actors:
        if actor.role != ROLE_VALIDATOR:
            chain.w3.provider.make_request(
                "anvil_setBalance", [actor.account.address, hex(ETH_FOR_GAS)]
            )
        _fund_and_stake(chain, deployer, actor)
        if actor.role == ROLE_VALIDATOR:
            actor.bls_secret = bls.keygen(f"devnet-{actor.name}".encode())
            public_key = bls.pubkey_to_eip2537(bls.public_key(actor.bls_secret))
            proof = bls.signature_to_eip2537(
                bls.prove_possession(actor.bls_secret, actor.account.address)
            )
            call = staking.functions.register_validator(public_key, proof)
            actor.gas["register_validator"] = chain.transact(actor.account, call).gas_used
        if actor.role == ROLE_COMPUTE:
            index = int(actor.name.split("-")[1])
            call = staking.functions.declare_node("cpu", 4_096, 100, DEMO_WORKLOADS[index])
            actor.gas["declare_node"] = chain.transact(actor.account, call).gas_used
    return actors


def _fund_pools_and_bootstrap(chain: ChainClient) -> None:
    deployer = devnet_account(0)
    token = chain["EMCToken"]
    gpu_reward = chain["GPUComputeReward"]
    chain.transact(deployer, token.functions.approve(gpu_reward.address, EMISSION_POOL))
    chain.transact(deployer, gpu_reward.functions.fund_emission(EMISSION_POOL))
    consensus_reward = chain["ConsensusReward"].address
    chain.transact(deployer, token.functions.transfer(consensus_reward, CONSENSUS_REWARD_POOL))
    chain.transact(deployer, chain["ComputeConsensus"].functions.bootstrap())


def demo_inputs(seed: int) -> dict[str, np.ndarray]:
    """Return the inputs of one demo request: two random float32 matrices."""
    rng = np.random.default_rng(seed)
    shape = (DEMO_SIZE, DEMO_SIZE)
    return {
        "a": rng.standard_normal(shape, dtype=np.float32),
        "b": rng.standard_normal(shape, dtype=np.float32),
    }


async def _call_routers(
    agents: DevnetAgents, requests: Sequence[tuple[str, bytes]]
) -> list[Response]:
    """Send every ``(router name, payload)`` at once from one caller; return the answers."""
    answers: list[Response | None] = [None] * len(requests)
    async with caller(list(agents.router_addrs.values())) as host, RouterClient(host) as client:

        async def one(index: int, router: str, payload: bytes) -> None:
            peer = ID.from_base58(agents.routers[router].info["peer_id"])
            answers[index] = await client.call(peer, DEMO_WORKLOAD, payload, REQUEST_TIMEOUT_S)

        async with trio.open_nursery() as nursery:
            for index, (router, payload) in enumerate(requests):
                nursery.start_soon(one, index, router, payload)
    assert all(answer is not None for answer in answers)
    return answers  # type: ignore[return-value]


def send_demo_traffic(agents: DevnetAgents) -> list[Served]:
    """Send the demo requests through the routers, verify every answer; return what happened.

    Requests alternate between the routers; the router picks the node. The caller decodes each
    output and checks it with the workload's verifier, as a requester does, and bills what the
    workload meters for the inputs it sent.
    """
    workload = get_workload(DEMO_WORKLOAD)
    routers = list(agents.routers)
    count = DEMO_BATCHES * INVOCATIONS_PER_BATCH
    inputs = [demo_inputs(seed) for seed in range(count)]
    requests = [(routers[i % len(routers)], encode(inputs[i])) for i in range(count)]
    answers = trio.run(_call_routers, agents, requests)
    node_by_peer = agents.node_by_peer()
    served = []
    for i, answer in enumerate(answers):
        router = requests[i][0]
        if not answer.ok:
            raise RuntimeError(
                f"demo request {i} via {router} failed: {answer.error} {answer.message}"
            )
        node = node_by_peer.get(answer.node)
        if node is None:
            raise RuntimeError(f"demo request {i} answered by {answer.node!r}, not a devnet node")
        outputs = decode(answer.output)
        verdict = workload.verify(inputs[i], outputs, np.random.default_rng(10_000 + i))
        if not verdict.accepted:
            raise RuntimeError(f"{node}'s answer to request {i} failed: {verdict.reason}")
        served.append(
            Served(
                height=1 + i // INVOCATIONS_PER_BATCH,
                index=i % INVOCATIONS_PER_BATCH,
                router=router,
                node=node,
                node_peer_id=answer.node,
                node_address=agents.nodes[node].info["address"],
                units=workload.units(inputs[i]),
                output_hash=digest(outputs),
                hops=answer.hops,
            )
        )
    return served


def run_demo_settlement(
    chain: ChainClient, actors: list[Actor], agents: DevnetAgents
) -> SettlementReport:
    """Escrow, send the demo traffic through the agents, commit DEMO_BATCHES batches, claim."""
    token, market = chain["EMCToken"], chain["ComputeMarket"]
    deployer, user = devnet_account(0), devnet_account(USER_INDEX)
    chain.transact(deployer, token.functions.transfer(user.address, ESCROW))
    chain.transact(user, token.functions.approve(market.address, ESCROW))
    chain.transact(user, market.functions.deposit(ESCROW))

    validators = [a for a in actors if a.role == ROLE_VALIDATOR]
    routers = [a for a in actors if a.role == ROLE_ROUTER]
    nodes = [a for a in actors if a.role == ROLE_COMPUTE]
    by_name = {a.name: a for a in actors}
    emission = chain["GPUComputeReward"].functions.emission_per_commit().call()
    traffic_started = time.monotonic()
    ledger, report = Ledger(), SettlementReport(served=send_demo_traffic(agents))
    ledger.add_depositor(user.address)  # every root holds every depositor, spent or not
    log.info(
        "%d demo requests answered through the routers in %.1f s",
        len(report.served),
        time.monotonic() - traffic_started,
    )
    # Every validator signs; the set index is the order validators registered.
    signers = {i: v.bls_secret for i, v in enumerate(validators)}
    for height in range(1, DEMO_BATCHES + 1):
        invocations = [
            Invocation(
                user=user.address,
                node_owner=served.node_address,
                router=by_name[served.router].account.address,
                price=served.units * PRICE_PER_UNIT,
                record_hash=record_hash(height, served.index, served.output_hash),
            )
            for served in report.served
            if served.height == height
        ]
        billed = ledger.apply(invocations)
        ledger.emit([node.account.address for node in nodes], emission)
        tree = ledger.rewards()
        commit = Commit(
            height=height,
            batch_root=batch_root(invocations),
            billing_root=ledger.billing_root(),
            rewards_root=tree.root,
            rewards_total=tree.total,
            billed_total=billed,
            # Every validator signed the previous height: its reward is booked for all of them.
            parent_signers=0 if height == 1 else signers_bitmap(signers.keys()),
        )
        receipt = submit_commit(chain, commit, signers, validators[0].account)
        report.batches.append(
            {
                "height": height,
                "invocations": len(invocations),
                "billed": billed,
                "gas": receipt.gas_used,
            }
        )
    tree = ledger.rewards()
    for actor in nodes + routers:
        address = actor.account.address
        before = token.functions.balanceOf(address).call()
        receipt = claim_rewards(
            chain, address, tree.cumulative[address], tree.proofs[address], actor.account
        )
        actor.gas["claim"] = receipt.gas_used
        report.claimed[actor.name] = token.functions.balanceOf(address).call() - before
    # A height's signers are sealed by the next commit (ConsensusReward books them when claimed):
    # the last height's reward waits for the next batch.
    heights = list(range(1, DEMO_BATCHES))
    consensus_reward = chain["ConsensusReward"]
    for index, validator in enumerate(validators):
        address = validator.account.address
        before = token.functions.balanceOf(address).call()
        receipt = chain.transact(
            validator.account, consensus_reward.functions.claim(heights, [index] * len(heights))
        )
        validator.gas["claim"] = receipt.gas_used
        report.validator_rewards[validator.name] = (
            token.functions.balanceOf(address).call() - before
        )
    return report


@dataclass
class Devnet:
    """A running devnet: the chain, the contracts, the actors and their agent processes."""

    anvil: Anvil
    chain: ChainClient
    actors: list[Actor]
    agents: DevnetAgents
    settlement: SettlementReport | None = None

    def stop(self) -> None:
        """Stop every process the devnet started: the agents, then anvil."""
        try:
            self.agents.stop()
        finally:
            self.anvil.stop()


def start_devnet(port: int | None = None, demo: bool = True, workdir: Path | None = None) -> Devnet:
    """Start anvil, deploy fresh contracts, stake the actors, start the agents, settle demo traffic.

    The agents start once their stake is on-chain: the routers read it from there at start-up.
    Their logs and ready files go to ``workdir`` (default ``.emc/devnet/``).
    """
    started = time.monotonic()
    anvil: Anvil | None = None
    agents: DevnetAgents | None = None
    try:
        anvil = start_anvil(port=port)
        deploy_contracts(anvil.url, fresh=True)
        chain = ChainClient(anvil.url)
        log.info("contracts deployed (%.1f s)", time.monotonic() - started)
        actors = bring_actors_on_chain(chain)
        log.info("actors on-chain (%.1f s)", time.monotonic() - started)
        agents = start_agents(
            Path(workdir) if workdir is not None else DEFAULT_WORKDIR,
            anvil.url,
            chain.record["chain_id"],
        )
        _fund_pools_and_bootstrap(chain)  # while the agents start
        wait_for_agents(agents, actors)
        log.info("agents up and linked (%.1f s)", time.monotonic() - started)
        settlement = run_demo_settlement(chain, actors, agents) if demo else None
    except BaseException:
        try:
            if agents is not None:
                agents.stop()
        finally:
            if anvil is not None:
                anvil.stop()
        raise
    log.info("devnet up at %s in %.1f s", anvil.url, time.monotonic() - started)
    return Devnet(anvil=anvil, chain=chain, actors=actors, agents=agents, settlement=settlement)
