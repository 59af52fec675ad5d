"""`emc devnet`: the whole network on one machine, from a bare checkout.

Today it starts a local anvil, deploys and wires the contracts, and brings the devnet's actors
on-chain: 4 validators (staked, BLS keys registered with proofs of possession), 2 routers and 3
compute nodes (staked, capabilities declared). Each later part of the network joins here.
"""

import logging
import time
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from offchain.chain.anvil import Anvil, start_anvil
from offchain.chain.client import ChainClient, devnet_account
from offchain.chain.deploy import deploy_contracts
from offchain.crypto import bls

log = logging.getLogger(__name__)

EMC = 10**18
ROLE_VALIDATOR, ROLE_ROUTER, ROLE_COMPUTE = 1, 2, 4
VALIDATORS, ROUTERS, COMPUTE_NODES = 4, 2, 3
DEMO_WORKLOADS = (
    ["matmul-f32", "matmul-modp"],
    ["mlp-infer", "cnn-infer"],
    ["matmul-modp", "nbody"],
)


@dataclass
class Actor:
    """One devnet participant: its account, role and what it cost to bring it on-chain."""

    name: str
    role: int
    account: LocalAccount
    stake: int
    gas: dict[str, int] = field(default_factory=dict)
    bls_secret: int | None = None


@dataclass
class Devnet:
    """A running devnet: the chain, the contracts and the actors."""

    anvil: Anvil
    chain: ChainClient
    actors: list[Actor]

    def stop(self) -> None:
        """Stop every process the devnet started."""
        self.anvil.stop()


def _fund_and_stake(chain: ChainClient, deployer: LocalAccount, actor: Actor) -> None:
    token, staking = chain["EMCToken"], chain["Staking"]
    chain.transact(deployer, token.functions.transfer(actor.account.address, actor.stake))
    chain.transact(actor.account, token.functions.approve(staking.address, actor.stake))
    actor.gas["stake"] = chain.transact(
        actor.account, staking.functions.stake(actor.role, actor.stake)
    ).gas_used


def bring_actors_on_chain(chain: ChainClient) -> list[Actor]:
    """Stake every devnet actor, register validator keys and declare compute nodes."""
    deployer = devnet_account(0)
    staking = chain["Staking"]
    minimum = {role: staking.functions.min_stake(role).call() for role in (1, 2, 4)}
    actors = [
        Actor(f"validator-{i}", ROLE_VALIDATOR, devnet_account(1 + i), minimum[1])
        for i in range(VALIDATORS)
    ]
    actors += [
        Actor(f"router-{i}", ROLE_ROUTER, devnet_account(5 + i), minimum[2]) for i in range(ROUTERS)
    ]
    actors += [
        Actor(f"compute-{i}", ROLE_COMPUTE, devnet_account(7 + i), minimum[4])
        for i in range(COMPUTE_NODES)
    ]
    for actor in actors:
        _fund_and_stake(chain, deployer, actor)
        if actor.role == ROLE_VALIDATOR:
            actor.bls_secret = bls.keygen(f"devnet-{actor.name}".encode())
            public_key = bls.pubkey_to_eip2537(bls.public_key(actor.bls_secret))
            proof = bls.signature_to_eip2537(bls.prove_possession(actor.bls_secret))
            call = staking.functions.register_validator(public_key, proof)
            actor.gas["register_validator"] = chain.transact(actor.account, call).gas_used
        if actor.role == ROLE_COMPUTE:
            index = int(actor.name.split("-")[1])
            call = staking.functions.declare_node("cpu", 4_096, 100, DEMO_WORKLOADS[index])
            actor.gas["declare_node"] = chain.transact(actor.account, call).gas_used
    return actors


def start_devnet(port: int | None = None) -> Devnet:
    """Start anvil, deploy fresh contracts and bring the actors on-chain."""
    started = time.monotonic()
    anvil = start_anvil(port=port)
    try:
        deploy_contracts(anvil.url, fresh=True)
        chain = ChainClient(anvil.url)
        actors = bring_actors_on_chain(chain)
    except BaseException:
        anvil.stop()
        raise
    log.info("devnet up at %s in %.1f s", anvil.url, time.monotonic() - started)
    return Devnet(anvil=anvil, chain=chain, actors=actors)
