"""The in-process deployment (`offchain/chain/deploy.py`) and the build it reads (`artifacts.py`).

`tests/scripts/test_deploy.py` runs the same code through `ape run deploy`.
"""

import json
from pathlib import Path

import pytest
from web3 import Web3

from offchain.chain import deploy as deploy_module
from offchain.chain.anvil import start_anvil
from offchain.chain.artifacts import (
    DEFAULT_BUILD_MANIFEST,
    ArtifactError,
    export_abi,
    load_artifacts,
)
from offchain.chain.deploy import (
    DEPLOYABLES,
    LOCAL,
    DeploymentError,
    deploy,
    deploy_contracts,
    web3_sender,
)


@pytest.fixture(scope="module")
def anvil():
    with start_anvil() as running:
        yield running


def test_deploy_contracts__again__reuses_every_contract_and_sends_nothing(anvil, tmp_path):
    first = deploy_contracts(anvil.url, fresh=True, deployments_dir=tmp_path, abi_dir=tmp_path)
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    nonce = w3.eth.get_transaction_count(first["deployer"])
    again = deploy_contracts(anvil.url, deployments_dir=tmp_path, abi_dir=tmp_path)
    assert again == first
    assert w3.eth.get_transaction_count(first["deployer"]) == nonce
    assert set(first["contracts"]) == set(DEPLOYABLES)


def test_deploy_contracts__sets_the_local_parameters(anvil, tmp_path):
    record = deploy_contracts(anvil.url, fresh=True, deployments_dir=tmp_path, abi_dir=tmp_path)
    w3 = Web3(Web3.HTTPProvider(anvil.url))

    def view(name):
        abi = json.loads((tmp_path / f"{name}.json").read_text())
        return w3.eth.contract(address=record["contracts"][name], abi=abi).functions

    assert view("EMCToken").totalSupply().call() == LOCAL.initial_supply
    assert view("Staking").min_stake(4).call() == LOCAL.min_compute_stake
    assert view("ComputeMarket").withdraw_delay().call() == LOCAL.withdraw_delay
    assert view("ComputeConsensus").epoch_length().call() == LOCAL.epoch_length
    assert view("Timelock").get_minimum_delay().call() == LOCAL.timelock_delay
    assert view("Staking").slasher().call() == record["contracts"]["ComputeConsensus"]


def test_deploy__account_the_node_signs_for__deploys_and_hands_over(anvil, tmp_path):
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    deployer = w3.eth.accounts[1]
    record = deploy(w3, web3_sender(w3, deployer), tmp_path / "local.json", tmp_path, fresh=True)
    assert record.deployer == deployer
    for name, owner in (("Staking", record.contracts["Timelock"]), ("ComputeConsensus", deployer)):
        abi = json.loads((tmp_path / f"{name}.json").read_text())
        contract = w3.eth.contract(address=record.contracts[name], abi=abi)
        assert contract.functions.owner().call() == owner, name


def test_deploy_contracts__record_for_another_chain__refused(anvil, tmp_path):
    (tmp_path / "local.json").write_text(json.dumps({"network": "local", "chain_id": 1}))
    with pytest.raises(DeploymentError, match="records chain id 1, but the connected chain"):
        deploy_contracts(anvil.url, deployments_dir=tmp_path, abi_dir=tmp_path)


def test_deploy_contracts__constructor_arguments_short__one_line_error(
    anvil, tmp_path, monkeypatch
):
    monkeypatch.setitem(deploy_module.CONSTRUCTORS, "ComputeSocket", lambda c: ())
    with pytest.raises(DeploymentError, match="ComputeSocket's constructor takes 1 arguments"):
        deploy_contracts(anvil.url, fresh=True, deployments_dir=tmp_path, abi_dir=tmp_path)


def test_export_abi__writes_what_ape_writes(tmp_path):
    """Ape exported `abi/` before; the files must not change with the path that writes them."""
    from ethpm_types import ContractType

    manifest = json.loads(DEFAULT_BUILD_MANIFEST.read_text())
    for name, artifact in load_artifacts(DEPLOYABLES).items():
        contract_type = ContractType.model_validate(manifest["contractTypes"][name])
        ape = [entry.model_dump(mode="json", by_alias=True) for entry in contract_type.abi]
        assert export_abi(artifact, tmp_path).read_text() == json.dumps(ape, indent=2) + "\n"


def _manifest(tmp_path: Path, source: str, compiled: str) -> tuple[Path, Path]:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "Thing.vy").write_text(source)
    manifest = tmp_path / ".build" / "__local__.json"
    manifest.parent.mkdir()
    thing = {"abi": [], "deploymentBytecode": {"bytecode": "0x6000"}}
    data = {
        "sources": {"contracts/Thing.vy": {"content": compiled}},
        "contractTypes": {"Thing": thing},
    }
    manifest.write_text(json.dumps(data))
    return manifest, contracts


def test_load_artifacts__source_as_compiled__loads(tmp_path):
    # Ape keeps a source without its trailing blank lines.
    manifest, contracts = _manifest(tmp_path, "x: uint256\n\n", "x: uint256\n")
    assert load_artifacts(("Thing",), manifest, contracts)["Thing"].bytecode == "0x6000"


def test_load_artifacts__source_changed_since_the_build__tells_to_compile(tmp_path):
    manifest, contracts = _manifest(tmp_path, "x: uint256\ny: uint256\n", "x: uint256\n")
    with pytest.raises(ArtifactError, match=r"older than contracts/Thing.vy: run `ape compile`"):
        load_artifacts(("Thing",), manifest, contracts)


def test_load_artifacts__no_build_or_no_contract__tells_to_compile(tmp_path):
    manifest, contracts = _manifest(tmp_path, "x: uint256\n", "x: uint256\n")
    with pytest.raises(ArtifactError, match="no deployment bytecode for Other: run `ape compile`"):
        load_artifacts(("Other",), manifest, contracts)
    with pytest.raises(ArtifactError, match="no compiled contracts at .*: run `ape compile`"):
        load_artifacts(("Thing",), tmp_path / "missing.json", contracts)
