"""Claim rewards: a compute node's or router's earnings, or a validator's consensus rewards.

    ape run claim_rewards --network ethereum:local:foundry --account TEST::6 --proof-file e.json
    ape run claim_rewards --network ethereum:local:foundry --account TEST::1 --heights 1-9 --index 0

Earnings are cumulative: `--proof-file` is a JSON object {"account": "0x..", "cumulative": <wei>,
"proof": ["0x..", ...]} for the latest rewards root, as the validators' rewards service gives it,
and one claim collects everything not yet claimed. Consensus rewards are claimed per height
signed: `--heights` (a list like 1,2,5 or a range like 1-10) with `--index`, the validator's
position in those heights' validator set.
"""

import json
from pathlib import Path

import click
from ape.cli import network_option

from scripts._operator import (
    OperatorCommand,
    chain_refusal,
    format_emc,
    load_contracts,
    operator_options,
    require_account,
)


def _read_earnings(path: Path) -> tuple[str, int, list[bytes]]:
    try:
        data = json.loads(path.read_text())
        proof = [bytes.fromhex(h.removeprefix("0x")) for h in data["proof"]]
        return data["account"], int(data["cumulative"]), proof
    except (ValueError, KeyError, TypeError) as error:
        raise click.BadParameter(f"{path}: not a rewards proof ({error})") from error


def _parse_heights(text: str) -> list[int]:
    heights: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            heights += list(range(int(first), int(last or first) + 1))
        except ValueError as error:
            raise click.BadParameter(f"not a height list: {text!r}") from error
    return heights


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--proof-file", type=click.Path(path_type=Path, exists=True), default=None)
@click.option("--heights", default=None, help="Consensus heights signed, e.g. 1-10 or 1,3,4.")
@click.option("--index", type=int, default=None, help="Your index in those heights' set.")
def cli(network, account, deployment_name, deployments_dir, proof_file, heights, index):
    """Claim compute/router earnings with a proof, or consensus rewards by height."""
    account = require_account(account)
    contracts = load_contracts(network, deployment_name, deployments_dir)
    if (proof_file is None) == (heights is None):
        raise click.UsageError("pass either --proof-file or --heights with --index")
    token = contracts["EMCToken"]
    before = token.balanceOf(account)
    if proof_file is not None:
        earner, cumulative, proof = _read_earnings(proof_file)
        with chain_refusal("claim"):
            contracts["GPUComputeReward"].claim(earner, cumulative, proof, sender=account)
        paid_to = earner
    else:
        if index is None:
            raise click.UsageError("--heights needs --index")
        signed = _parse_heights(heights)
        with chain_refusal("claim"):
            contracts["ConsensusReward"].claim(signed, [index] * len(signed), sender=account)
        paid_to = account.address
    paid = token.balanceOf(paid_to) - (before if paid_to == account.address else 0)
    click.echo(f"Claimed for {paid_to}")
    if paid_to == account.address:
        click.echo(f"  paid:           {format_emc(paid)}")
    click.echo(f"  wallet balance: {format_emc(token.balanceOf(paid_to))}")
