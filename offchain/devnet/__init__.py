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

At start-up the devnet's user (anvil account ``USER_INDEX``) gets a socket for each workload
each compute node serves, minted by that node (``DEMO_WORKLOADS``, ``SOCKET_PRICE`` an
invocation), and escrows ``ESCROW`` in ComputeMarket. The routers run with
``--check-invocations`` and the compute nodes with the chain flags, so a router serves signed
orders only, checked against the chain's sockets and escrow, and a node prices each order from
its socket and signs a receipt with the key it staked.

Then it runs demo traffic through the network and on through settlement. The user signs a
``matmul-f32`` order for each request (``offchain/routers/router_client.py``), the requests
alternate between the routers and over the user's three ``matmul-f32`` sockets, and every answer
is checked: its receipt (this order's, signed by the socket's node, for this output, within the
order's price) and its output, with the workload's verifier. The first order is sent again to
the router that served it, which refuses the replay (``nonce-reused``). Meanwhile the devnet
takes the records the routers gossip as a validator does: a host of its own joins the routers'
gossip bound to validator-0's staked address and subscribes to the records topic
(``offchain/routers/record_feed.py``). Once a record has arrived for every served request (and
for nothing else), it checks each one against the chain (``check_record``), bills the batches
from them (each record's user, receipt price, node and router; its id in the batch root is the
record's EIP-712 digest), commits them on-chain under the validators' aggregate BLS seal, and
the nodes, routers and validators claim what they earned. In a real network the validator agents
check the records and agree on the batches with IBFT; until they join the devnet, it checks,
batches and seals itself.
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
from offchain.chain.invocation_market import deposit_escrow, mint_socket
from offchain.chain.market_view import MarketSnapshot, connect_market
from offchain.chain.settlement import claim_rewards, submit_commit
from offchain.crypto import bls
from offchain.crypto.keys import generate_keypair, keypair_from_private_key
from offchain.net.host import identity_from_seed
from offchain.protocol.commit import Commit, signers_bitmap
from offchain.protocol.errors import InputRejected
from offchain.protocol.invocation import (
    InvocationDomain,
    InvocationRecord,
    InvocationRequest,
    check_record,
    request_digest,
)
from offchain.protocol.ledger import Invocation, Ledger, batch_root
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER, ROLE_VALIDATOR, ROLES
from offchain.protocol.wire import Response
from offchain.routers.record_feed import RecordFeed, record_feed
from offchain.routers.router_client import (
    InvocationClient,
    InvocationFailed,
    caller,
    order_for,
    verify_receipt,
)
from offchain.runtime.spawn import AgentProcess, router_process, seed_hex, stop_all, worker_process
from offchain.workers.workloads import decode, encode, get_workload

log = logging.getLogger(__name__)

EMC = 10**18
VALIDATORS, ROUTERS, COMPUTE_NODES = 4, 2, 3
# Every node serves matmul-f32, which the demo traffic runs, plus one more workload. The user
# holds a socket on each workload of each node, minted by that node.
DEMO_WORKLOADS = (
    ["matmul-f32", "matmul-modp"],
    ["matmul-f32", "mlp-infer"],
    ["matmul-f32", "nbody-step"],
)
USER_INDEX = 11
ESCROW = 100 * EMC
SOCKET_PRICE = EMC // 100  # every demo socket's price: 0.01 EMC an invocation
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
# Records reach the feed within a gossip heartbeat or two of the answers; bounded, not slept.
RECORDS_TIMEOUT_S = 60.0
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
class DemoSocket:
    """A socket the devnet's user holds: minted by a compute node, on one of its workloads."""

    socket_id: int
    workload: str
    node: str  # the compute node actor that minted it (the only node that serves it)
    node_address: str
    price: int


@dataclass(frozen=True)
class DemoMarket:
    """The user's side of the devnet's market: its account, sockets and the signing domain."""

    user: LocalAccount
    domain: InvocationDomain
    sockets: list[DemoSocket]

    def sockets_for(self, workload: str) -> list[DemoSocket]:
        """Return the user's sockets on ``workload``, in minting order."""
        return [socket for socket in self.sockets if socket.workload == workload]


@dataclass(frozen=True)
class Served:
    """One demo request as it happened: who routed it, who ran it, its checked receipt."""

    height: int
    index: int
    router: str  # the router the caller sent it to
    node: str  # the compute node actor's name
    node_peer_id: str  # Response.node: the libp2p peer id of the node that ran it
    node_address: str  # that node's staked address (from its ready file)
    socket_id: int
    request_hash: bytes  # the order's EIP-712 digest, which its receipt and record name
    units: int  # the receipt's units
    price: int  # the receipt's price
    output_hash: bytes  # the receipt's output hash (the caller hashed the output it got)
    hops: int


@dataclass(frozen=True)
class Refused:
    """A demo order a router refused: billed nothing, since it left no record."""

    router: str
    request_hash: bytes
    reason: str


@dataclass
class SettlementReport:
    """What the demo traffic settled: per batch, each request and record, and the claims.

    ``records`` are the records the routers gossiped, one per served request, in the order of
    ``served``: the batches bill them in that order, ``INVOCATIONS_PER_BATCH`` a height.
    """

    sockets: list[DemoSocket] = field(default_factory=list)
    batches: list[dict] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    records: list[InvocationRecord] = field(default_factory=list)
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


def open_market(chain: ChainClient, actors: Sequence[Actor]) -> DemoMarket:
    """Give the devnet's user its sockets and its escrow; return the user's side of the market.

    Each compute node mints the user a socket on each workload it declared (ComputeSocket lets
    only an active compute node mint, and only on a workload it declared), at ``SOCKET_PRICE``
    an invocation; the user escrows ``ESCROW`` in ComputeMarket.
    """
    user = devnet_account(USER_INDEX)
    sockets = []
    for actor in actors:
        if actor.role != ROLE_COMPUTE:
            continue
        for workload in DEMO_WORKLOADS[int(actor.name.split("-")[1])]:
            socket_id = mint_socket(chain, actor.account, user.address, workload, SOCKET_PRICE)
            address = actor.account.address
            sockets.append(DemoSocket(socket_id, workload, actor.name, address, SOCKET_PRICE))
    deposit_escrow(chain, devnet_account(0), user, ESCROW)
    domain = InvocationDomain(chain.record["chain_id"], chain["ComputeMarket"].address)
    return DemoMarket(user, domain, sockets)


def demo_inputs(seed: int) -> dict[str, np.ndarray]:
    """Return the inputs of one demo request: two random float32 matrices."""
    rng = np.random.default_rng(seed)
    shape = (DEMO_SIZE, DEMO_SIZE)
    return {
        "a": rng.standard_normal(shape, dtype=np.float32),
        "b": rng.standard_normal(shape, dtype=np.float32),
    }


@dataclass(frozen=True)
class Demand:
    """One demo request: the router it goes to, the socket, the user's order and the input."""

    index: int
    router: str
    socket: DemoSocket
    order: InvocationRequest
    inputs: dict[str, np.ndarray]
    payload: bytes


def demo_demands(agents: DevnetAgents, market: DemoMarket) -> list[Demand]:
    """Return the demo requests: they alternate between the routers and over the user's sockets."""
    routers = list(agents.routers)
    sockets = market.sockets_for(DEMO_WORKLOAD)
    demands = []
    for i in range(DEMO_BATCHES * INVOCATIONS_PER_BATCH):
        inputs = demo_inputs(i)
        payload = encode(inputs)
        socket = sockets[i % len(sockets)]
        order = order_for(
            market.user.address, socket.socket_id, DEMO_WORKLOAD, payload, socket.price
        )
        demands.append(Demand(i, routers[i % len(routers)], socket, order, inputs, payload))
    return demands


class RecordsSeen:
    """The records the feed delivered for the demo's orders, by request hash.

    A record of an order the devnet did not send, or a second record of one, is a fault; so is,
    once the answers are in (``expect``), a record of an order that was not served. ``done`` is
    set when every served order has its record, or at the first fault.
    """

    def __init__(self, orders: set[bytes]) -> None:
        self.orders = orders
        self.by_request: dict[bytes, InvocationRecord] = {}
        self.faults: list[str] = []
        self.served: set[bytes] | None = None
        self.done = trio.Event()

    def add(self, record: InvocationRecord) -> None:
        """Take one record from the feed."""
        request = record.receipt.request_hash
        if request not in self.orders:
            self.faults.append(f"a record of no demo order ({request.hex()})")
        elif request in self.by_request:
            self.faults.append(f"a second record of order {request.hex()}")
        else:
            self.by_request[request] = record
        self._update()

    def expect(self, served: set[bytes]) -> None:
        """Note the orders that were served: each must have one record, and no other order."""
        self.served = served
        self._update()

    def _update(self) -> None:
        if self.served is not None:
            unserved = self.by_request.keys() - self.served
            self.faults += [f"a record of refused order {h.hex()}" for h in unserved]
            for request in unserved:
                del self.by_request[request]
        if self.faults or (self.served is not None and self.served <= self.by_request.keys()):
            self.done.set()


async def _collect(feed: RecordFeed, seen: RecordsSeen) -> None:
    async for record in feed.records():
        seen.add(record)


async def _exchange(
    agents: DevnetAgents, market: DemoMarket, demands: Sequence[Demand], validator: LocalAccount
) -> tuple[dict[int, Response], Response, RecordsSeen]:
    """Send the signed orders, and the replay of the first; return the answers and records.

    The records are collected as they are gossiped, by a feed joined (bound to ``validator``)
    before the first order goes out; this returns once every served order has its record.
    """
    addrs = list(agents.router_addrs.values())
    peers = {name: ID.from_base58(p.info["peer_id"]) for name, p in agents.routers.items()}
    seen = RecordsSeen({request_digest(d.order, market.domain) for d in demands})
    answers: dict[int, Response] = {}
    key = keypair_from_private_key(validator.key)
    failure: Exception | None = None
    async with (
        record_feed(key, addrs) as feed,
        caller(addrs) as host,
        InvocationClient(host, market.user, market.domain) as client,
    ):

        async def send(demand: Demand) -> Response:
            router = peers[demand.router]
            return await client.send(router, demand.order, demand.payload, REQUEST_TIMEOUT_S)

        async def one(demand: Demand) -> None:
            answers[demand.index] = await send(demand)

        async def all_of(batch: Sequence[Demand]) -> None:
            async with trio.open_nursery() as senders:
                for demand in batch:
                    senders.start_soon(one, demand)

        # A first order on each socket (so each node's first, slowest, run overlaps the others),
        # then the first order again, to the router that served it: a replay; then the rest.
        first_round = len(market.sockets_for(DEMO_WORKLOAD))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_collect, feed, seen)
            try:
                await feed.meshed(LINK_TIMEOUT_S)
                await all_of(demands[:first_round])
                replay = await send(demands[0])
                await all_of(demands[first_round:])
                seen.expect(
                    {request_digest(d.order, market.domain) for d in demands if answers[d.index].ok}
                )
                with trio.move_on_after(RECORDS_TIMEOUT_S):
                    await seen.done.wait()
            except Exception as exc:  # raised below, not wrapped in the nursery's group
                failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if not seen.done.is_set():
        missing = len(seen.served or ()) - len(seen.by_request)
        raise TimeoutError(
            f"{missing} served orders' records not gossiped within {RECORDS_TIMEOUT_S} s"
        )
    return answers, replay, seen


@dataclass(frozen=True)
class DemoTraffic:
    """What the demo traffic did: the served requests, the refused ones, the served records."""

    served: list[Served]
    refused: list[Refused]
    records: list[InvocationRecord]  # one per served request, in the order of ``served``


def send_demo_traffic(
    agents: DevnetAgents, market: DemoMarket, validator: LocalAccount
) -> DemoTraffic:
    """Send the user's signed orders through the routers, check every answer, collect records.

    Each answer's receipt is verified (this order's, signed by the socket's node, for the output
    returned, within the order's price) and its output checked with the workload's verifier, as
    a requester does. The first order's replay must be refused. Every served request must have
    exactly one record on the records topic, and a refused one none.
    """
    workload = get_workload(DEMO_WORKLOAD)
    demands = demo_demands(agents, market)
    answers, replay, seen = trio.run(_exchange, agents, market, demands, validator)
    node_by_peer = agents.node_by_peer()
    served = []
    for demand in demands:
        i, router, answer = demand.index, demand.router, answers[demand.index]
        try:
            invoked = verify_receipt(answer, demand.order, market.domain)
        except (InvocationFailed, InputRejected) as exc:
            raise RuntimeError(f"demo request {i} via {router} failed: {exc}") from exc
        node = node_by_peer.get(answer.node)
        if node is None:
            raise RuntimeError(f"demo request {i} answered by {answer.node!r}, not a devnet node")
        receipt = invoked.receipt
        if receipt.worker != demand.socket.node_address or node != demand.socket.node:
            raise RuntimeError(
                f"demo request {i} on {demand.socket.node}'s socket served by {node} "
                f"(receipt of {receipt.worker})"
            )
        outputs = decode(invoked.output)
        verdict = workload.verify(demand.inputs, outputs, np.random.default_rng(10_000 + i))
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
                socket_id=demand.socket.socket_id,
                request_hash=receipt.request_hash,
                units=receipt.units,
                price=receipt.price,
                output_hash=receipt.output_hash,
                hops=answer.hops,
            )
        )
    if replay.ok or replay.error != "nonce-reused":
        raise RuntimeError(
            f"the replayed order was answered {'ok' if replay.ok else replay.error!r}, "
            "not refused as nonce-reused"
        )
    first = demands[0]
    refused = [Refused(first.router, request_digest(first.order, market.domain), replay.error)]
    if seen.faults:
        raise RuntimeError("; ".join(seen.faults))
    records = [seen.by_request[s.request_hash] for s in served]
    return DemoTraffic(served, refused, records)


def check_records(
    chain: ChainClient, domain: InvocationDomain, records: Sequence[InvocationRecord]
) -> list[Invocation]:
    """Check each record against the chain, as a validator does; return what each one bills.

    The checks read the contracts at one block (``MarketSnapshot``): signatures, the socket and
    its holder, the deadline, the nonce not billed before, the price on the socket's terms, the
    user's escrow counting the records before it, the node that served, and the router staked.
    Raises the ``InvocationRejected`` of the first record that fails.
    """
    billed: set[tuple[str, int]] = set()
    reader = connect_market(chain.w3.provider.endpoint_uri, chain_id=chain.record["chain_id"])
    view = MarketSnapshot(reader, lambda user, nonce: (user, nonce) in billed)
    now = chain.w3.eth.get_block(view.block)["timestamp"]
    staking = chain["Staking"]
    pending: dict[str, int] = {}
    invocations = []
    for record in records:
        user = record.request.user
        check_record(record, domain, view, now, pending.get(user, 0))
        router = record.receipt.router
        if not staking.functions.is_active(router, ROLE_ROUTER).call(block_identifier=view.block):
            raise RuntimeError(f"record countersigned by {router}, no staked router")
        billed.add((user, record.request.nonce))
        pending[user] = pending.get(user, 0) + record.receipt.price
        socket = view.socket(record.request.socket_id)
        issuer = socket.issuer if socket is not None else None
        invocations.append(Invocation.from_record(record, domain, issuer))
    return invocations


def run_demo_settlement(
    chain: ChainClient, actors: list[Actor], agents: DevnetAgents, market: DemoMarket
) -> SettlementReport:
    """Send the demo traffic, bill its records in DEMO_BATCHES committed batches, claim."""
    token = chain["EMCToken"]
    validators = [a for a in actors if a.role == ROLE_VALIDATOR]
    routers = [a for a in actors if a.role == ROLE_ROUTER]
    nodes = [a for a in actors if a.role == ROLE_COMPUTE]
    emission = chain["GPUComputeReward"].functions.emission_per_commit().call()
    traffic_started = time.monotonic()
    # The devnet takes the routers' records as validator-0, which submits the commits below.
    traffic = send_demo_traffic(agents, market, validators[0].account)
    log.info(
        "%d signed demo requests answered and their records gossiped in %.1f s",
        len(traffic.served),
        time.monotonic() - traffic_started,
    )
    report = SettlementReport(
        sockets=market.sockets,
        served=traffic.served,
        refused=traffic.refused,
        records=traffic.records,
    )
    invocations = check_records(chain, market.domain, traffic.records)
    ledger = Ledger()
    ledger.add_depositor(market.user.address)  # every root holds every depositor, spent or not
    # Every validator signs; the set index is the order validators registered.
    signers = {i: v.bls_secret for i, v in enumerate(validators)}
    for height in range(1, DEMO_BATCHES + 1):
        batch = invocations[(height - 1) * INVOCATIONS_PER_BATCH : height * INVOCATIONS_PER_BATCH]
        billed = ledger.apply(batch)
        ledger.emit([node.account.address for node in nodes], emission)
        tree = ledger.rewards()
        commit = Commit(
            height=height,
            batch_root=batch_root(batch),
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
                "invocations": len(batch),
                "billed": billed,
                "gas": receipt.gas_used,
                "batch_root": commit.batch_root,
                "record_hashes": [invocation.record_hash for invocation in batch],
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
    market: DemoMarket
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
    The user's sockets and escrow go on-chain while they start. Their logs and ready files go to
    ``workdir`` (default ``.emc/devnet/``).
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
        market = open_market(chain, actors)
        wait_for_agents(agents, actors)
        log.info("agents up and linked (%.1f s)", time.monotonic() - started)
        settlement = run_demo_settlement(chain, actors, agents, market) if demo else None
    except BaseException:
        try:
            if agents is not None:
                agents.stop()
        finally:
            if anvil is not None:
                anvil.stop()
        raise
    log.info("devnet up at %s in %.1f s", anvil.url, time.monotonic() - started)
    return Devnet(
        anvil=anvil,
        chain=chain,
        actors=actors,
        agents=agents,
        market=market,
        settlement=settlement,
    )
