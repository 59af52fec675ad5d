"""Mistakes the operator guide does not run, each one clear line from the operator scripts.

No chain where APE_FOUNDRY_HOST points, a deployment record whose contracts have no code on the
chain, and an account whose ETH does not cover the gas. (The guide's own error examples run in
test_operator_guide.py: no ETH, not enough EMC, the wrong role, nothing to claim, no
APE_FOUNDRY_HOST, and the chain's refusals.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from offchain.chain.anvil import free_port, start_anvil

REPO = Path(__file__).resolve().parents[2]
APE = str(Path(sys.executable).parent / "ape")
APE_LOG = ("INFO:", "SUCCESS:", "WARNING:")


def ape_run(host: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [APE, "run", *args, "--network", "ethereum:local:foundry"],
        cwd=REPO, env=dict(os.environ, APE_FOUNDRY_HOST=host),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess) -> str:
    said = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and not line.startswith(APE_LOG)
    ]
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(said) == 1 and said[0].startswith("Error: "), said
    return said[0]


def test_no_chain_at_the_host__one_line_says_where_it_looked():
    host = f"http://127.0.0.1:{free_port()}"
    line = one_error_line(ape_run(host, "position", "--account", "TEST::7"))
    assert line.startswith(f"Error: no chain answers at {host}: start one there")


def test_record_for_another_chain__one_line_names_the_contract(tmp_path):
    address = "0x" + "11" * 20
    record = {"network": "local", "chain_id": 31337, "contracts": {"EMCToken": address}}
    (tmp_path / "local.json").write_text(json.dumps(record))
    with start_anvil() as anvil:
        result = ape_run(
            anvil.url, "position", "--account", "TEST::7", "--deployments-dir", str(tmp_path)
        )
    line = one_error_line(result)
    assert line.startswith(
        f"Error: EMCToken at {address} has no code on chain 31337 at {anvil.url}: "
        f"{tmp_path / 'local.json'} was written for another chain"
    )


def test_too_little_eth_for_gas__one_line_says_how_to_fund():
    from ape.exceptions import AccountsError

    from scripts import _operator

    address = "0x" + "22" * 20
    error = AccountsError(
        f"Transfer value meets or exceeds account balance for account '{address}' on chain "
        "'31337' using provider 'foundry'.\nAre you using the correct account / chain / provider "
        "combination?\n(transfer_value=1000085904, balance=1)."
    )

    with pytest.raises(click.ClickException) as refused, _operator.one_line_errors():
        raise error
    assert refused.value.message == (
        f"{address} has not enough ETH to pay for gas: send it some (on the devnet: "
        f"ape run send_emc --account TEST::0 --to {address} --eth 1)"
    )
