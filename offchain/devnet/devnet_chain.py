"""Bringing the devnet's actors on-chain and opening the demo market.

The actors are funded and staked (validators register BLS keys, compute nodes declare their
workloads), the reward pools funded and consensus bootstrapped; then the user gets a socket on
each workload of each node, and its escrow.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount

from offchain.chain.chain_client import ChainClient, devnet_account
from offchain.chain.invocation_market import deposit_escrow, mint_socket
from offchain.crypto import bls
from offchain.crypto.keys import generate_keypair
from offchain.devnet.devnet_params import (
    COMPUTE_NODES,
    CONSENSUS_REWARD_POOL,
    DEMO_WORKLOADS,
    EMISSION_POOL,
    ESCROW,
    ETH_FOR_GAS,
    ROUTERS,
    SOCKET_PRICE,
    USER_INDEX,
    VALIDATORS,
)
from offchain.protocol.invocation import InvocationDomain
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER, ROLE_VALIDATOR, ROLES
from offchain.runtime.spawn import seed_hex


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


def agent_seed(name: str) -> str:
    """Return the 64-hex-digit Ethereum key seed of the devnet agent ``name``."""
    return seed_hex(f"devnet-{name}")


def agent_account(name: str) -> LocalAccount:
    """Return the account of agent ``name``: the key its ``--eth-key-seed`` derives."""
    keypair = generate_keypair(bytes.fromhex(agent_seed(name)))
    return Account.from_key(keypair.private_key)


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


def fund_pools_and_bootstrap(chain: ChainClient) -> None:
    """Fund the reward pools (emission and consensus) and bootstrap ComputeConsensus."""
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
