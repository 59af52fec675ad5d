"""The chain client and the devnet, against real anvils on loopback."""

import json

import pytest

from offchain.chain.anvil import start_anvil
from offchain.chain.client import ChainClient, ChainError, devnet_account
from offchain.devnet import (
    COMPUTE_NODES,
    DEMO_BATCHES,
    ESCROW,
    INVOCATIONS_PER_BATCH,
    PRICE_PER_UNIT,
    ROUTERS,
    USER_INDEX,
    VALIDATORS,
    start_devnet,
)


@pytest.fixture(scope="module")
def devnet():
    net = start_devnet(port=None)
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
    assert set(report.validator_rewards.values()) == {DEMO_BATCHES * per_commit // VALIDATORS}
