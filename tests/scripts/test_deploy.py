"""`ape run deploy`: record, ABIs, idempotence, forks and wrong chains, read back with web3."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from web3 import Web3

from offchain.chain.anvil import start_anvil

REPO = Path(__file__).resolve().parents[2]
APE = str(Path(sys.executable).parent / "ape")


def run_deploy(url: str | None, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run the deploy script on Ape's foundry provider: on the anvil at ``url`` when given
    (ape-foundry connects to a running anvil at its configured host), else on one it starts."""
    env = dict(os.environ, APE_FOUNDRY_HOST=url) if url else None
    return subprocess.run(
        [
            APE, "run", "deploy", "--network", "ethereum:local:foundry",
            "--deployments-dir", str(tmp_path / "deployments"),
            "--abi-dir", str(tmp_path / "abi"),
            *extra,
        ],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def read_record(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / "deployments" / f"{name}.json").read_text())


def contract(w3: Web3, tmp_path: Path, name: str, address: str):
    abi = json.loads((tmp_path / "abi" / f"{name}.json").read_text())
    return w3.eth.contract(address=address, abi=abi)


@pytest.fixture(scope="module")
def upstream():
    with start_anvil() as anvil:
        yield anvil


def test_deploy__foundry_network__writes_local_record_and_abis(tmp_path):
    result = run_deploy(None, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    record = read_record(tmp_path, "local")
    assert record["chain_id"] == 31337
    assert {"EMCToken", "Staking"} <= set(record["contracts"])
    assert record["block"] >= max(record["blocks"].values())
    for name in ("EMCToken", "Staking"):
        abi = json.loads((tmp_path / "abi" / f"{name}.json").read_text())
        assert any(entry.get("name") == "transfer" or entry.get("name") == "stake" for entry in abi)


def test_deploy__running_chain__readable_with_plain_web3(upstream, tmp_path):
    result = run_deploy(upstream.url, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    record = read_record(tmp_path, "local")
    w3 = Web3(Web3.HTTPProvider(upstream.url))
    assert record["chain_id"] == w3.eth.chain_id
    token = contract(w3, tmp_path, "EMCToken", record["contracts"]["EMCToken"])
    staking = contract(w3, tmp_path, "Staking", record["contracts"]["Staking"])
    assert token.functions.symbol().call() == "EMC"
    assert token.functions.totalSupply().call() == 10**9 * 10**18
    assert staking.functions.token().call() == record["contracts"]["EMCToken"]
    assert staking.functions.unbonding_period().call() == 60
    assert staking.functions.min_stake(1).call() == 10_000 * 10**18


def test_deploy__run_again__reuses_then_fresh_redeploys(upstream, tmp_path):
    url = upstream.url
    assert run_deploy(url, tmp_path).returncode == 0
    first = read_record(tmp_path, "local")["contracts"]
    again = run_deploy(url, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already deployed" in again.stdout
    assert read_record(tmp_path, "local")["contracts"] == first
    fresh = run_deploy(url, tmp_path, "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    renewed = read_record(tmp_path, "local")["contracts"]
    assert set(renewed.values()).isdisjoint(first.values())


def test_deploy__fork_of_running_chain__reuses_upstream_contracts(upstream, tmp_path):
    assert run_deploy(upstream.url, tmp_path).returncode == 0
    upstream_contracts = read_record(tmp_path, "local")["contracts"]
    with start_anvil(fork_url=upstream.url) as fork:
        reused = run_deploy(fork.url, tmp_path)
        assert reused.returncode == 0, reused.stderr
        assert "already deployed" in reused.stdout
        assert read_record(tmp_path, "local")["contracts"] == upstream_contracts
        # A fresh deployment on the fork lives on the fork only.
        fresh = run_deploy(fork.url, tmp_path, "--fresh", "--name", "local-fork")
        assert fresh.returncode == 0, fresh.stderr
        fork_token = read_record(tmp_path, "local-fork")["contracts"]["EMCToken"]
        assert Web3(Web3.HTTPProvider(fork.url)).eth.get_code(fork_token) != b""
        assert Web3(Web3.HTTPProvider(upstream.url)).eth.get_code(fork_token) == b""


def test_deploy__record_for_another_chain__refuses_clearly(tmp_path):
    with start_anvil(chain_id=4242) as other:
        (tmp_path / "deployments").mkdir()
        (tmp_path / "deployments" / "local.json").write_text(
            json.dumps({"network": "local", "chain_id": 31337, "contracts": {}})
        )
        result = run_deploy(other.url, tmp_path)
        assert result.returncode != 0
        assert (
            "records chain id 31337, but the connected chain is 4242"
            in result.stdout + result.stderr
        )


def test_deploy__owned_contracts__held_by_the_timelock(upstream, tmp_path):
    """No contract is left with an owner that can act without the timelock's delay."""
    result = run_deploy(upstream.url, tmp_path, "--fresh")
    assert result.returncode == 0, result.stderr + result.stdout
    record = read_record(tmp_path, "local")["contracts"]
    w3 = Web3(Web3.HTTPProvider(upstream.url))
    timelock = contract(w3, tmp_path, "Timelock", record["Timelock"])
    assert timelock.functions.get_minimum_delay().call() == 60
    for name in ("Staking", "ComputeMarket", "GPUComputeReward", "ConsensusReward"):
        owned = contract(w3, tmp_path, name, record[name])
        assert owned.functions.owner().call() == record["Timelock"], name
    deployer = w3.eth.accounts[0]
    proposer = timelock.functions.PROPOSER_ROLE().call()
    assert timelock.functions.hasRole(proposer, deployer).call()
    # ComputeConsensus keeps its deployer only until bootstrap, which renounces it.
    consensus = contract(w3, tmp_path, "ComputeConsensus", record["ComputeConsensus"])
    assert consensus.functions.owner().call() == deployer
