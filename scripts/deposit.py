"""Deposit EMC into your market escrow, which pays for invocations.

    ape run deposit --network ethereum:local:foundry --account TEST::7 --amount 25 --permit

With `--permit` the approval is an EIP-2612 signature, so the deposit takes one transaction.
"""

import click
from ape import chain
from ape.cli import network_option

from scripts._operator import (
    OperatorCommand,
    chain_refusal,
    ensure_allowance,
    format_emc,
    load_contracts,
    operator_options,
    parse_emc,
    require_account,
    sign_permit,
)

PERMIT_SECONDS = 600


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--amount", required=True, help="EMC to deposit.")
@click.option(
    "--permit", "use_permit", is_flag=True, help="Approve by signature (one transaction)."
)
def cli(network, account, deployment_name, deployments_dir, amount, use_permit):
    """Deposit EMC into escrow."""
    account = require_account(account)
    contracts = load_contracts(network, deployment_name, deployments_dir)
    token, market = contracts["EMCToken"], contracts["ComputeMarket"]
    wei = parse_emc(amount)
    balance = token.balanceOf(account)
    if balance < wei:
        raise click.ClickException(
            f"not enough EMC: {format_emc(balance)} held, {format_emc(wei)} needed"
        )
    if use_permit:
        deadline = chain.pending_timestamp + PERMIT_SECONDS
        signature = sign_permit(account, token, market.address, wei, deadline)
        with chain_refusal("deposit"):
            market.deposit_with_permit(
                wei, deadline, signature.v, signature.r, signature.s, sender=account
            )
    else:
        ensure_allowance(token, account, market, wei)
        with chain_refusal("deposit"):
            market.deposit(wei, sender=account)
    click.echo(
        f"Deposited {format_emc(wei)} into escrow for {account.address}"
        + (" (permit)" if use_permit else "")
    )
    click.echo(f"  escrow:         {format_emc(market.escrow(account))}")
    click.echo(f"  wallet balance: {format_emc(token.balanceOf(account))}")
