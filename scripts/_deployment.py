"""Idempotent deployment bookkeeping shared by the deploy and operator scripts.

A deployment record, `deployments/<name>.json`, maps contract names to addresses and keeps the
chain id and the block of each deployment. Deploying again reuses every contract whose recorded
address still holds code on the connected chain (so a fork of a deployed chain reuses the
upstream's contracts), and deploys only what is missing, unless told to start fresh.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ape import chain, project

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEPLOYMENTS_DIR = REPO_ROOT / "deployments"
DEFAULT_ABI_DIR = REPO_ROOT / "abi"

# Every deployable, in deployment order. Later issues append their contracts here.
DEPLOYABLES = (
    "EMCToken",
    "Staking",
    "ComputeSocket",
    "ComputeMarket",
    "InvocationDigest",
    "GPUComputeReward",
    "ConsensusReward",
    "ComputeConsensus",
    "Timelock",
)


class DeploymentError(RuntimeError):
    """A deployment record that cannot be used on the connected chain."""


@dataclass
class DeploymentRecord:
    """What is deployed where, on one chain."""

    name: str
    chain_id: int
    contracts: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, int] = field(default_factory=dict)
    block: int = 0
    deployer: str = ""

    def to_json(self) -> dict:
        """Return the record as written to disk."""
        return {
            "network": self.name,
            "chain_id": self.chain_id,
            "block": self.block,
            "deployer": self.deployer,
            "contracts": self.contracts,
            "blocks": self.blocks,
        }

    @classmethod
    def from_json(cls, data: dict) -> "DeploymentRecord":
        """Return the record read from disk."""
        return cls(
            name=data["network"],
            chain_id=int(data["chain_id"]),
            contracts=dict(data.get("contracts", {})),
            blocks={k: int(v) for k, v in data.get("blocks", {}).items()},
            block=int(data.get("block", 0)),
            deployer=data.get("deployer", ""),
        )


def record_path(name: str, directory: Path = DEFAULT_DEPLOYMENTS_DIR) -> Path:
    """Return where the record of deployment ``name`` lives."""
    return directory / f"{name}.json"


def load_record(path: Path, chain_id: int, fresh: bool) -> DeploymentRecord:
    """Return the record at ``path`` for ``chain_id``, or an empty one when fresh or absent."""
    name = path.stem
    if fresh or not path.exists():
        return DeploymentRecord(name=name, chain_id=chain_id)
    record = DeploymentRecord.from_json(json.loads(path.read_text()))
    if record.chain_id != chain_id:
        raise DeploymentError(
            f"{path} records chain id {record.chain_id}, but the connected chain is {chain_id}; "
            "pass --fresh to deploy anew, or --name to keep a separate record"
        )
    return record


def save_record(record: DeploymentRecord, path: Path) -> None:
    """Write ``record`` to ``path`` (atomically, so a crash leaves the old record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n")
    temporary.replace(path)


def is_deployed(address: str | None) -> bool:
    """Check that ``address`` holds code on the connected chain."""
    return bool(address) and len(chain.provider.get_code(address)) > 0


def ensure_deployed(
    record: DeploymentRecord, name: str, deploy: Callable[[], object], log: Callable[[str], None]
):
    """Return the contract ``name`` from ``record`` if it has code, else deploy and record it."""
    container = getattr(project, name)
    address = record.contracts.get(name)
    if is_deployed(address):
        log(f"{name:<18} {address}  (already deployed)")
        return container.at(address)
    instance = deploy()
    receipt = instance.receipt if hasattr(instance, "receipt") else None
    block = receipt.block_number if receipt is not None else chain.blocks.head.number
    record.contracts[name] = instance.address
    record.blocks[name] = block
    record.block = max(record.block, block)
    log(f"{name:<18} {instance.address}  (deployed in block {block})")
    return instance


def export_abis(
    directory: Path = DEFAULT_ABI_DIR, names: tuple[str, ...] = DEPLOYABLES
) -> list[Path]:
    """Write ``abi/<Contract>.json`` for each deployable and return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        contract_type = getattr(project, name).contract_type
        abi = [entry.model_dump(mode="json", by_alias=True) for entry in contract_type.abi]
        path = directory / f"{name}.json"
        path.write_text(json.dumps(abi, indent=2) + "\n")
        written.append(path)
    return written
