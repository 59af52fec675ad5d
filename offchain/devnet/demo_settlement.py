"""Settling the demo traffic: its records checked, billed in committed batches, and claimed."""

import logging
import time
from dataclasses import dataclass, field

from offchain.chain.chain_client import ChainClient
from offchain.chain.settlement import claim_rewards, submit_commit
from offchain.devnet.demo_records import check_records
from offchain.devnet.demo_traffic import Refused, Served, send_demo_traffic
from offchain.devnet.devnet_agents import DevnetAgents
from offchain.devnet.devnet_chain import Actor, DemoMarket, DemoSocket
from offchain.devnet.devnet_params import DEMO_BATCHES, INVOCATIONS_PER_BATCH
from offchain.protocol.commit import Commit, signers_bitmap
from offchain.protocol.invocation import InvocationRecord
from offchain.protocol.ledger import Ledger, batch_root
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER, ROLE_VALIDATOR

log = logging.getLogger(__name__)


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
