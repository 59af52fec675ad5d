"""Run `ape run deploy` against a running chain and return its deployment record."""

import json
import os
import subprocess
import sys
from pathlib import Path

from offchain.chain.anvil import REPO_ROOT
from offchain.chain.chain_client import DEFAULT_ABI_DIR, DEFAULT_DEPLOYMENTS_DIR, ChainError


def deploy_contracts(
    url: str,
    fresh: bool = False,
    name: str = "local",
    deployments_dir: Path = DEFAULT_DEPLOYMENTS_DIR,
    abi_dir: Path = DEFAULT_ABI_DIR,
    timeout: float = 600,
) -> dict:
    """Deploy (or reuse) the contracts on the anvil at ``url`` and return the record."""
    ape = str(Path(sys.executable).parent / "ape")
    command = [
        ape, "run", "deploy", "--network", "ethereum:local:foundry", "--name", name,
        "--deployments-dir", str(deployments_dir), "--abi-dir", str(abi_dir),
    ]  # fmt: skip
    if fresh:
        command.append("--fresh")
    # ape-foundry connects to the anvil already running at its configured host.
    env = dict(os.environ, APE_FOUNDRY_HOST=url)
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise ChainError(
            f"ape run deploy failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return json.loads((Path(deployments_dir) / f"{name}.json").read_text())
