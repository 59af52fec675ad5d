"""The chain client and the devnet, against real anvils (and the devnet's agents) on loopback."""

import json
from collections import Counter

import pytest

from offchain.chain.anvil import start_anvil
from offchain.chain.chain_client import ChainClient, ChainError, devnet_account
from offchain.devnet import (
    COMPUTE_NODES,
    DEMO_BATCHES,
    DEMO_WORKLOAD,
    ESCROW,
    INVOCATIONS_PER_BATCH,
    PRICE_PER_UNIT,
    ROUTERS,
    USER_INDEX,
    VALIDATORS,
    read_gauge,
    start_devnet,
)
from offchain.protocol.rewards import split_invocation


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    net = start_devnet(port=None, workdir=tmp_path_factory.mktemp("devnet"))
    yield net
    net.stop()


def test_devnet__every_actor_active_in_its_role(devnet):
    staking = devnet.chain["Staking"]
    assert len(devnet.actors) == VALIDATORS + ROUTERS + COMPUTE_NODES
    for actor in devnet.actors:
        assert staking.functions.is_active(actor.account.address, actor.role).call(), actor.name


def test_devnet__validators_registered_their_bls_keys(devnet):
    from offchain.crypto import bls

    staking = devnet.chain["Staking"]
    assert staking.functions.validator_count().call() == VALIDATORS
    for actor in devnet.actors[:VALIDATORS]:
        expected = bls.pubkey_to_eip2537(bls.public_key(actor.bls_secret))
        assert staking.functions.bls_public_key(actor.account.address).call() == expected


def test_transact__revert__raises_with_reason(devnet):
    staking = devnet.chain["Staking"]
    with pytest.raises(ChainError, match="staking: nothing to withdraw"):
        devnet.chain.transact(devnet_account(15), staking.functions.withdraw())


def test_client__record_for_another_chain__refused(devnet, tmp_path):
    record = dict(devnet.chain.record, chain_id=1)
    (tmp_path / "local.json").write_text(json.dumps(record))
    with pytest.raises(ChainError, match="is for chain 1"):
        ChainClient(devnet.anvil.url, deployments_dir=tmp_path)


def test_client__no_record__tells_how_to_deploy(tmp_path):
    with start_anvil() as anvil, pytest.raises(ChainError, match="run `ape run deploy` first"):
        ChainClient(anvil.url, deployments_dir=tmp_path)


def test_devnet__demo_traffic_settled_and_every_earner_paid(devnet):
    report = devnet.settlement
    assert [b["height"] for b in report.batches] == list(range(1, DEMO_BATCHES + 1))
    billed = sum(b["billed"] for b in report.batches)
    assert billed == DEMO_BATCHES * INVOCATIONS_PER_BATCH * PRICE_PER_UNIT
    consensus, market = devnet.chain["ComputeConsensus"], devnet.chain["ComputeMarket"]
    assert consensus.functions.last_height().call() == DEMO_BATCHES
    # the user's escrow still holds everything not billed
    assert market.functions.unbilled_escrow().call() == ESCROW - billed
    assert market.functions.escrow(devnet_account(USER_INDEX).address).call() == ESCROW
    # nodes and routers claimed the whole billed total plus the released emission, less the
    # rounding dust of splitting each commit's emission evenly over the compute nodes
    emission = devnet.chain["GPUComputeReward"].functions.emission_per_commit().call()
    dust = DEMO_BATCHES * (emission % COMPUTE_NODES)
    assert sum(report.claimed.values()) == billed + DEMO_BATCHES * emission - dust
    assert all(amount > 0 for amount in report.claimed.values())
    # every validator signed every commit with equal stake: equal shares of the booked rewards
    per_commit = devnet.chain["ConsensusReward"].functions.reward_per_commit().call()
    assert set(report.validator_rewards.values()) == {(DEMO_BATCHES - 1) * per_commit // VALIDATORS}


def test_devnet__agents_run_bound_to_their_staked_addresses(devnet):
    agents = devnet.agents
    assert sorted(agents.routers) == [f"router-{i}" for i in range(ROUTERS)]
    assert sorted(agents.nodes) == [f"compute-{i}" for i in range(COMPUTE_NODES)]
    accounts = {actor.name: actor.account.address for actor in devnet.actors}
    for name, process in {**agents.routers, **agents.nodes}.items():
        assert process.alive(), process.log_tail()
        assert process.info["address"] == accounts[name]
    # each router holds every compute node as staked, under the address it staked from: read
    # from the chain (the routers' config stakes nobody), when it joined or on a later re-read
    for router in agents.routers.values():
        assert "--staked" not in " ".join(router.argv) and "--chain-rpc" in router.argv
        lines = router.log_text().splitlines()
        for node in agents.nodes.values():
            peer = f"node {node.info['peer_id']} "
            about = [line for line in lines if peer in line and "staked=" in line]
            assert about and f"staked=True address={accounts[node.name]}" in about[-1], node.name
    # the routers meshed with each other, each admitting the other as a staked router
    zero, one = agents.routers["router-0"], agents.routers["router-1"]
    for router, other in ((zero, "router-1"), (one, "router-0")):
        peer = agents.routers[other].info["peer_id"]
        assert f"router {peer} up (staked router {accounts[other]})" in router.log_text()
        assert "refused mesh link" not in router.log_text()
        assert read_gauge(router, "emc_router_mesh_peers") == ROUTERS - 1


def test_devnet__demo_traffic_went_through_the_routers_to_node_processes(devnet):
    agents, served = devnet.agents, devnet.settlement.served
    assert len(served) == DEMO_BATCHES * INVOCATIONS_PER_BATCH
    # requests alternate between the routers; each answered from one of its own nodes
    assert Counter(s.router for s in served) == {
        name: len(served) // ROUTERS for name in agents.routers
    }
    assert all(s.hops == 0 for s in served)
    peers = {process.info["peer_id"]: name for name, process in agents.nodes.items()}
    for s in served:
        assert peers[s.node_peer_id] == s.node
        assert s.node_address == agents.nodes[s.node].info["address"]
    # each node process ran exactly the requests credited to it
    by_node = Counter(s.node for s in served)
    for name, process in agents.nodes.items():
        lines = process.log_text().splitlines()
        started = sum(
            "task start" in line and f"workload={DEMO_WORKLOAD}" in line for line in lines
        )
        assert started == by_node[name], name


def test_devnet__claims_credit_the_nodes_and_routers_that_served(devnet):
    report = devnet.settlement
    emission = devnet.chain["GPUComputeReward"].functions.emission_per_commit().call()
    # every demo request is one metered unit (see the billed total above)
    router_cut, node_cut = split_invocation(PRICE_PER_UNIT)
    for name in devnet.agents.nodes:
        count = sum(s.node == name for s in report.served)
        expected = DEMO_BATCHES * (emission // COMPUTE_NODES) + count * node_cut
        assert report.claimed[name] == expected, name
    for name in devnet.agents.routers:
        count = sum(s.router == name for s in report.served)
        assert report.claimed[name] == count * router_cut, name
