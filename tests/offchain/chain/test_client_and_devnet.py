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
    DEMO_WORKLOADS,
    ESCROW,
    INVOCATIONS_PER_BATCH,
    ROUTERS,
    SOCKET_PRICE,
    USER_INDEX,
    VALIDATORS,
    read_gauge,
    start_devnet,
)
from offchain.protocol import merkle
from offchain.protocol.invocation import check_signatures, record_digest
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


def test_devnet__user_holds_a_socket_on_each_workload_of_each_node_and_escrow(devnet):
    market, user = devnet.market, devnet_account(USER_INDEX).address
    assert market.user.address == user
    nodes = {a.name: a.account.address for a in devnet.actors if a.name.startswith("compute")}
    assert sorted((s.node, s.workload) for s in market.sockets) == sorted(
        (f"compute-{i}", workload) for i, workloads in enumerate(DEMO_WORKLOADS)
        for workload in workloads
    )  # fmt: skip
    sockets = devnet.chain["ComputeSocket"]
    for socket in market.sockets:
        assert sockets.functions.ownerOf(socket.socket_id).call() == user
        workload, _capacity, price, issuer, _expiry, _budget = sockets.functions.sockets(
            socket.socket_id
        ).call()
        assert (workload, price, issuer) == (socket.workload, SOCKET_PRICE, nodes[socket.node])
    market_contract = devnet.chain["ComputeMarket"]
    assert market.domain.verifying_contract == market_contract.address
    assert market.domain.chain_id == devnet.chain.w3.eth.chain_id


def test_devnet__demo_traffic_settled_and_every_earner_paid(devnet):
    report = devnet.settlement
    assert [b["height"] for b in report.batches] == list(range(1, DEMO_BATCHES + 1))
    billed = sum(b["billed"] for b in report.batches)
    # billed from the records: each one's receipt price, the socket's price
    assert billed == sum(r.receipt.price for r in report.records)
    assert billed == DEMO_BATCHES * INVOCATIONS_PER_BATCH * SOCKET_PRICE
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


def test_devnet__each_served_request_billed_from_exactly_one_gossiped_record(devnet):
    report, domain = devnet.settlement, devnet.market.domain
    user = devnet_account(USER_INDEX).address
    routers = {a.name: a.account.address for a in devnet.actors if a.name.startswith("router")}
    assert len(report.records) == len(report.served) == DEMO_BATCHES * INVOCATIONS_PER_BATCH
    # one record per served request, in its order, and no other: the replay left none
    assert [r.receipt.request_hash for r in report.records] == [
        s.request_hash for s in report.served
    ]
    assert len({s.request_hash for s in report.served}) == len(report.served)
    for served, record in zip(report.served, report.records, strict=True):
        check_signatures(record, domain)  # the user's, the node's and the router's
        assert record.request.user == user
        assert record.request.socket_id == served.socket_id
        assert record.receipt.worker == served.node_address
        assert record.receipt.router == routers[served.router]  # served where it was sent
        assert (record.receipt.price, record.receipt.output_hash) == (
            served.price,
            served.output_hash,
        )
    # each batch bills its records' receipt prices, under the records' own hashes
    commits = devnet.chain["ComputeConsensus"].events.StateCommitted().get_logs(from_block=0)
    assert [log.args.height for log in commits] == list(range(1, DEMO_BATCHES + 1))
    for batch, log in zip(report.batches, commits, strict=True):
        first = (batch["height"] - 1) * INVOCATIONS_PER_BATCH
        records = report.records[first : first + INVOCATIONS_PER_BATCH]
        hashes = [record_digest(record, domain) for record in records]
        assert batch["record_hashes"] == hashes
        assert batch["billed"] == sum(r.receipt.price for r in records) == log.args.billed_total
        root = merkle.build([merkle.leaf_hash(h) for h in hashes]).root
        assert batch["batch_root"] == root == log.args.batch_root


def test_devnet__a_replayed_order_refused_by_its_router_and_billed_nothing(devnet):
    report = devnet.settlement
    assert [(r.router, r.reason) for r in report.refused] == [("router-0", "nonce-reused")]
    (refused,) = report.refused
    # the replay of the first served order: its one record is the original's
    assert refused.request_hash == report.served[0].request_hash
    assert [r.receipt.request_hash for r in report.records].count(refused.request_hash) == 1


def test_devnet__agents_run_bound_to_their_staked_addresses(devnet):
    agents = devnet.agents
    assert sorted(agents.routers) == [f"router-{i}" for i in range(ROUTERS)]
    assert sorted(agents.nodes) == [f"compute-{i}" for i in range(COMPUTE_NODES)]
    for node in agents.nodes.values():
        assert "--chain-rpc" in node.argv  # prices orders from their sockets, signs receipts
    accounts = {actor.name: actor.account.address for actor in devnet.actors}
    for name, process in {**agents.routers, **agents.nodes}.items():
        assert process.alive(), process.log_tail()
        assert process.info["address"] == accounts[name]
    # each router holds every compute node as staked, under the address it staked from: read
    # from the chain (the routers' config stakes nobody), when it joined or on a later re-read
    for router in agents.routers.values():
        assert "--staked" not in " ".join(router.argv) and "--chain-rpc" in router.argv
        assert "--check-invocations" in router.argv  # signed orders only, checked on-chain
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
    # requests alternate between the routers and over the user's matmul sockets; each answered
    # by the node that minted its socket, one of the router's own nodes
    assert Counter(s.router for s in served) == {
        name: len(served) // ROUTERS for name in agents.routers
    }
    sockets = {s.socket_id: s for s in devnet.market.sockets}
    assert Counter(s.socket_id for s in served) == {
        socket.socket_id: len(served) // COMPUTE_NODES
        for socket in devnet.market.sockets_for(DEMO_WORKLOAD)
    }
    assert all(s.hops == 0 for s in served)
    peers = {process.info["peer_id"]: name for name, process in agents.nodes.items()}
    for s in served:
        assert peers[s.node_peer_id] == s.node == sockets[s.socket_id].node
        assert s.node_address == agents.nodes[s.node].info["address"]
        assert s.price == SOCKET_PRICE
    # each node process ran exactly the requests credited to it (the refused replay reached none)
    by_node = Counter(s.node for s in served)
    for name, process in agents.nodes.items():
        lines = process.log_text().splitlines()
        started = sum(
            "task start" in line and f"workload={DEMO_WORKLOAD}" in line for line in lines
        )
        assert started == by_node[name], name


def test_devnet__claims_credit_the_nodes_and_routers_of_the_records(devnet):
    report = devnet.settlement
    emission = devnet.chain["GPUComputeReward"].functions.emission_per_commit().call()
    accounts = {actor.name: actor.account.address for actor in devnet.actors}
    for name in devnet.agents.nodes:
        records = [r for r in report.records if r.receipt.worker == accounts[name]]
        assert records, name
        node_cut = sum(split_invocation(r.receipt.price)[1] for r in records)
        expected = DEMO_BATCHES * (emission // COMPUTE_NODES) + node_cut
        assert report.claimed[name] == expected, name
    for name in devnet.agents.routers:
        records = [r for r in report.records if r.receipt.router == accounts[name]]
        assert records, name
        assert report.claimed[name] == sum(split_invocation(r.receipt.price)[0] for r in records)
