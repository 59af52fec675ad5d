"""Claim rewards: a validator's consensus rewards, or a compute node's or router's earnings.

    ape run claim_rewards --network ethereum:local:foundry --account TEST::1 --consensus
    ape run claim_rewards --network ethereum:local:foundry --account TEST::1 --heights 1-9 --index 0
    ape run claim_rewards --network ethereum:local:foundry --account TEST::6 --proof-file e.json

Consensus rewards are claimed per height signed. `--consensus` finds on-chain every height the
account signed, whose signers are sealed and whose reward is booked, and that it has not claimed,
with its index in each height's validator set, and claims them (64 heights a transaction);
`--heights` (a list like 1,2,5 or a range like 1-10) with `--index` names them instead.

Earnings are cumulative: `--proof-file` is a JSON object {"account": "0x..", "cumulative": <wei>,
"proof": ["0x..", ...]} for the latest rewards root, and one claim collects everything not yet
claimed. The validators' proof service that will hand these out does not run yet.
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
from scripts._rewards import consensus_rewards, height_ranges

MAX_CLAIM_HEIGHTS = 64  # ConsensusReward.MAX_CLAIM_HEIGHTS


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
@click.option("--consensus", is_flag=True, help="Claim every unclaimed consensus reward.")
@click.option("--heights", default=None, help="Consensus heights signed, e.g. 1-10 or 1,3,4.")
@click.option("--index", type=int, default=None, help="Your index in those heights' set.")
@click.option("--proof-file", type=click.Path(path_type=Path, exists=True), default=None)
def cli(network, account, deployment_name, deployments_dir, consensus, heights, index, proof_file):
    """Claim consensus rewards, or compute/router earnings with a proof."""
    if sum((consensus, heights is not None, proof_file is not None)) != 1:
        raise click.UsageError("pass one of --consensus, --heights with --index, --proof-file")
    account = require_account(account)
    contracts = load_contracts(network, deployment_name, deployments_dir)
    token = contracts["EMCToken"]
    before = token.balanceOf(account)
    if consensus:
        _claim_consensus(contracts, account)
        paid_to = account.address
    elif proof_file is not None:
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


def _claim_consensus(contracts: dict, account) -> None:
    rewards = consensus_rewards(contracts, account.address)
    if not rewards.claimable_heights:
        waiting = []
        if rewards.unbooked_heights:
            waiting.append(
                f"heights {height_ranges(rewards.unbooked_heights)} wait for ConsensusReward "
                "to hold enough EMC"
            )
        if rewards.last_height:
            waiting.append(f"height {rewards.last_height} waits for the next commit")
        raise click.ClickException(
            f"nothing to claim: {account.address} has no unclaimed consensus reward on a "
            f"sealed, booked height" + (f" ({'; '.join(waiting)})" if waiting else "")
        )
    pending = rewards.claimable_heights
    while pending:
        batch, pending = pending[:MAX_CLAIM_HEIGHTS], pending[MAX_CLAIM_HEIGHTS:]
        with chain_refusal("claim"):
            contracts["ConsensusReward"].claim(
                [height for height, _ in batch], [index for _, index in batch], sender=account
            )
    heights = [height for height, _ in rewards.claimable_heights]
    click.echo(f"Claimed consensus rewards for heights {height_ranges(heights)}")
