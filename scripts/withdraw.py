"""Leave the market escrow: request a withdrawal, then withdraw after the delay.

    ape run withdraw --network ethereum:local:foundry --account TEST::7 --request 10
    ape run withdraw --network ethereum:local:foundry --account TEST::7 [--proof-file proof.json]

The second step waits for the delay and for one consensus commit after the request. Once a
commit has billed you, withdrawing proves your cumulative spent against the latest billing root:
`--proof-file` is a JSON object {"cumulative_spent": <wei>, "proof": ["0x..", ...]}. The
validators' proof service that will hand these out does not run yet.
"""

import datetime
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
    parse_emc,
    require_account,
)


def _read_proof(path: Path | None, settled: int) -> tuple[int, list[bytes]]:
    if path is None:
        return settled, []
    try:
        data = json.loads(path.read_text())
        return int(data["cumulative_spent"]), [
            bytes.fromhex(h.removeprefix("0x")) for h in data["proof"]
        ]
    except (ValueError, KeyError, TypeError) as error:
        raise click.BadParameter(f"{path}: not a billing proof ({error})") from error


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--request", "request_amount", default=None, help="EMC to request for withdrawal.")
@click.option("--proof-file", type=click.Path(path_type=Path, exists=True), default=None)
def cli(network, account, deployment_name, deployments_dir, request_amount, proof_file):
    """Request a withdrawal from escrow, or complete one after the delay."""
    account = require_account(account)
    market = load_contracts(network, deployment_name, deployments_dir)["ComputeMarket"]
    if request_amount is not None:
        wei = parse_emc(request_amount)
        with chain_refusal("request withdrawal"):
            market.request_withdraw(wei, sender=account)
        unlock = market.withdrawable_at(account)
        when = datetime.datetime.fromtimestamp(unlock, datetime.UTC).isoformat()
        click.echo(f"Requested {format_emc(wei)} from escrow for {account.address}")
        click.echo(f"  withdrawable at: {unlock} ({when}), after {market.withdraw_delay()} s")
        return
    if market.proof_required(account) and proof_file is None:
        raise click.ClickException(
            "a commit has billed this account: pass --proof-file with its billing proof "
            "(the validators' proof service that hands these out does not run yet)"
        )
    spent, proof = _read_proof(proof_file, market.spent_settled(account))
    with chain_refusal("withdraw"):
        receipt = market.withdraw(spent, proof, sender=account)
    log = next(iter(market.Withdrawn.from_receipt(receipt)))
    click.echo(f"Withdrew {format_emc(log.amount)} (requested {format_emc(log.requested)})")
    click.echo(f"  escrow left: {format_emc(log.escrow)}")
