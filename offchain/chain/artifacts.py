"""The compiled contracts, read straight from Ape's build (`.build/__local__.json`).

`ape compile` writes one EIP-2678 manifest: per contract type its ABI and deployment bytecode,
and per source file the text it compiled. The manifest is refused when any contract source on
disk differs from (or is missing in) what it compiled, so a deployment never ships bytecode
older than its `.vy` source. ABIs are exported in the layout Ape writes (ethpm-types' field
order), so `abi/*.json` reads the same whichever path exported it.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from offchain.chain.anvil import REPO_ROOT

DEFAULT_BUILD_MANIFEST = REPO_ROOT / ".build" / "__local__.json"
DEFAULT_CONTRACTS_DIR = REPO_ROOT / "contracts"
REBUILD = "run `ape compile` (or `make env`)"

# The keys of an ABI entry and of a parameter, in the order ethpm-types writes them; keys not
# named here follow in the order the compiler gave them.
_ENTRY_KEYS = {
    "constructor": ("type", "stateMutability", "inputs"),
    "fallback": ("type", "stateMutability"),
    "receive": ("type", "stateMutability"),
    "function": ("type", "name", "stateMutability", "inputs", "outputs"),
    "event": ("type", "name", "inputs", "anonymous"),
    "error": ("type", "name", "inputs"),
}
_PARAMETER_KEYS = ("name", "type", "components", "internalType", "indexed")


class ArtifactError(RuntimeError):
    """The build is missing, lacks a contract, or is older than a contract source."""


@dataclass(frozen=True)
class Artifact:
    """What deploying and calling one contract type needs."""

    name: str
    abi: list[dict]
    bytecode: str  # the deployment (init) code, 0x-prefixed

    @property
    def constructor_inputs(self) -> list[dict]:
        """Return the constructor's parameters (none when the contract declares no constructor)."""
        for entry in self.abi:
            if entry.get("type") == "constructor":
                return entry.get("inputs", [])
        return []


def load_artifacts(
    names: tuple[str, ...],
    manifest: Path = DEFAULT_BUILD_MANIFEST,
    contracts_dir: Path = DEFAULT_CONTRACTS_DIR,
) -> dict[str, Artifact]:
    """Return the artifact of each contract in ``names``, checked against the sources on disk.

    Raises ``ArtifactError`` (one line, naming what to run) when the build is missing, lacks one
    of ``names``, or was compiled from other sources than those in ``contracts_dir``.
    """
    if not manifest.exists():
        raise ArtifactError(f"no compiled contracts at {manifest}: {REBUILD}")
    data = json.loads(manifest.read_text())
    _check_sources(data.get("sources") or {}, manifest, contracts_dir)
    types = data.get("contractTypes") or {}
    artifacts = {}
    for name in names:
        contract_type = types.get(name)
        bytecode = ((contract_type or {}).get("deploymentBytecode") or {}).get("bytecode")
        if not bytecode or bytecode == "0x":
            raise ArtifactError(f"{manifest} has no deployment bytecode for {name}: {REBUILD}")
        artifacts[name] = Artifact(name, contract_type["abi"], bytecode)
    return artifacts


def _check_sources(compiled: dict, manifest: Path, contracts_dir: Path) -> None:
    root = contracts_dir.parent
    for path in sorted(contracts_dir.rglob("*.vy*")):
        if path.suffix not in (".vy", ".vyi"):
            continue
        source_id = path.relative_to(root).as_posix()
        entry = compiled.get(source_id)
        if entry is None or _lines(entry.get("content") or "") != _lines(path.read_text()):
            raise ArtifactError(f"{manifest} is older than {source_id}: {REBUILD}")


def _lines(text: str) -> list[str]:
    # Ape keeps a source's lines without the trailing blank ones.
    return text.rstrip().splitlines()


def export_abi(artifact: Artifact, directory: Path) -> Path:
    """Write ``<directory>/<Contract>.json`` in Ape's layout and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{artifact.name}.json"
    abi = [_ordered(entry, _ENTRY_KEYS.get(entry.get("type"), ("type",))) for entry in artifact.abi]
    path.write_text(json.dumps(abi, indent=2) + "\n")
    return path


def _ordered(entry: dict, keys: tuple[str, ...]) -> dict:
    out = {key: entry[key] for key in keys if key in entry}
    out.update((key, value) for key, value in entry.items() if key not in out)
    for key in ("inputs", "outputs", "components"):
        if key in out:
            out[key] = [_ordered(parameter, _PARAMETER_KEYS) for parameter in out[key]]
    return out
