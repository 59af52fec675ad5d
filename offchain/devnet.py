"""`emc devnet`: the whole network on one machine, from a bare checkout.

It starts a local anvil, deploys and wires the contracts, and brings the devnet's actors
on-chain: 4 validators (staked, BLS keys registered with proofs of possession), 2 routers and 3
compute nodes (staked, capabilities declared). Then it runs demo traffic through settlement: a
user escrows EMC, the compute nodes run real workloads (checked by their verifiers), each batch
is committed on-chain under the validators' aggregate BLS seal, and the nodes, routers and
validators claim what they earned. The libp2p routing and the IBFT agreement that produce these
batches in a real network join here as their agents land.
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from eth_account.signers.local import LocalAccount

from offchain.chain.anvil import Anvil, start_anvil
from offchain.chain.client import ChainClient, devnet_account
from offchain.chain.deploy import deploy_contracts
from offchain.chain.settlement import claim_rewards, submit_commit
from offchain.crypto import bls
from offchain.protocol.commit import Commit
from offchain.protocol.ledger import Invocation, Ledger, batch_root, record_hash
from offchain.workers.workloads import digest, get_workload

log = logging.getLogger(__name__)

EMC = 10**18
ROLE_VALIDATOR, ROLE_ROUTER, ROLE_COMPUTE = 1, 2, 4
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
class SettlementReport:
    """What the demo traffic settled: per batch, and what each account claimed."""

    batches: list[dict] = field(default_factory=list)
    claimed: dict[str, int] = field(default_factory=dict)
    validator_rewards: dict[str, int] = field(default_factory=dict)


@dataclass
class Devnet:
    """A running devnet: the chain, the contracts and the actors."""

    anvil: Anvil
    chain: ChainClient
    actors: list[Actor]
    settlement: SettlementReport | None = None

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


def _fund_pools_and_bootstrap(chain: ChainClient) -> None:
    deployer = devnet_account(0)
    token = chain["EMCToken"]
    gpu_reward = chain["GPUComputeReward"]
    chain.transact(deployer, token.functions.approve(gpu_reward.address, EMISSION_POOL))
    chain.transact(deployer, gpu_reward.functions.fund_emission(EMISSION_POOL))
    consensus_reward = chain["ConsensusReward"].address
    chain.transact(deployer, token.functions.transfer(consensus_reward, CONSENSUS_REWARD_POOL))
    chain.transact(deployer, chain["ComputeConsensus"].functions.bootstrap())


def _run_demo_invocation(workload_id: str, seed: int) -> tuple[int, bytes]:
    """Run one small invocation, check it with its verifier; return (units, output hash)."""
    workload = get_workload(workload_id)
    rng = np.random.default_rng(seed)
    inputs = {
        "a": rng.standard_normal((64, 64), dtype=np.float32),
        "b": rng.standard_normal((64, 64), dtype=np.float32),
    }
    outputs = workload.run(inputs)
    verdict = workload.verify(inputs, outputs, rng)
    if not verdict.accepted:
        raise RuntimeError(f"demo invocation failed verification: {verdict.reason}")
    return workload.units(inputs), digest(outputs)


def run_demo_settlement(chain: ChainClient, actors: list[Actor]) -> SettlementReport:
    """Escrow, invoke, commit DEMO_BATCHES batches under the validators' seal, then claim."""
    token, market = chain["EMCToken"], chain["ComputeMarket"]
    deployer, user = devnet_account(0), devnet_account(USER_INDEX)
    chain.transact(deployer, token.functions.transfer(user.address, ESCROW))
    chain.transact(user, token.functions.approve(market.address, ESCROW))
    chain.transact(user, market.functions.deposit(ESCROW))

    validators = [a for a in actors if a.role == ROLE_VALIDATOR]
    routers = [a for a in actors if a.role == ROLE_ROUTER]
    nodes = [a for a in actors if a.role == ROLE_COMPUTE]
    emission = chain["GPUComputeReward"].functions.emission_per_commit().call()
    ledger, report = Ledger(), SettlementReport()
    # Every validator signs; the set index is the order validators registered.
    signers = {i: v.bls_secret for i, v in enumerate(validators)}
    for height in range(1, DEMO_BATCHES + 1):
        invocations = []
        for n in range(INVOCATIONS_PER_BATCH):
            node, router = nodes[n % len(nodes)], routers[n % len(routers)]
            units, output_hash = _run_demo_invocation("matmul-f32", height * 100 + n)
            invocations.append(
                Invocation(
                    user=user.address,
                    node_owner=node.account.address,
                    router=router.account.address,
                    price=units * PRICE_PER_UNIT,
                    record_hash=record_hash(height, n, output_hash),
                )
            )
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
    heights = list(range(1, DEMO_BATCHES + 1))
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


def start_devnet(port: int | None = None, demo: bool = True) -> Devnet:
    """Start anvil, deploy fresh contracts, bring the actors on-chain and settle demo traffic."""
    started = time.monotonic()
    anvil = start_anvil(port=port)
    try:
        deploy_contracts(anvil.url, fresh=True)
        chain = ChainClient(anvil.url)
        actors = bring_actors_on_chain(chain)
        _fund_pools_and_bootstrap(chain)
        settlement = run_demo_settlement(chain, actors) if demo else None
    except BaseException:
        anvil.stop()
        raise
    log.info("devnet up at %s in %.1f s", anvil.url, time.monotonic() - started)
    return Devnet(anvil=anvil, chain=chain, actors=actors, settlement=settlement)
