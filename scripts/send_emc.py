"""Send EMC, ETH for gas, or both, to another address (on devnet: fund keys from the deployer).

ape run send_emc --network ethereum:local:foundry --account TEST::0 --to 0x... --amount 500
ape run send_emc --network ethereum:local:foundry --account TEST::0 --to 0x... --eth 1

A key that signs transactions needs ETH for their gas: an agent's key (its --eth-key-seed) starts
with none.
"""

import click
from ape import chain
from ape.cli import network_option

from scripts._operator import (
    OperatorCommand,
    chain_refusal,
    format_emc,
    format_eth,
    load_contracts,
    operator_options,
    parse_emc,
    require_account,
)


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--to", "recipient", required=True, help="The receiving address.")
@click.option("--amount", default=None, help="EMC to send.")
@click.option("--eth", default=None, help="ETH to send as well, for gas (e.g. 1).")
def cli(network, account, deployment_name, deployments_dir, recipient, amount, eth):
    """Send EMC, and ETH for gas, to an address."""
    if amount is None and eth is None:
        raise click.UsageError("give --amount (EMC), --eth, or both")
    account = require_account(account)
    token = load_contracts(network, deployment_name, deployments_dir)["EMCToken"]
    if amount is not None:
        wei = parse_emc(amount)
        held = token.balanceOf(account)
        if held < wei:
            raise click.ClickException(
                f"not enough EMC: {format_emc(held)} held, {format_emc(wei)} needed"
            )
        with chain_refusal("send"):
            token.transfer(recipient, wei, sender=account)
        click.echo(f"Sent {format_emc(wei)} from {account.address} to {recipient}")
        click.echo(f"  their balance: {format_emc(token.balanceOf(recipient))}")
    if eth is not None:
        value = parse_emc(eth, unit="ETH")
        with chain_refusal("send ETH"):
            account.transfer(recipient, value)
        click.echo(f"Sent {format_eth(value)} for gas from {account.address} to {recipient}")
        click.echo(f"  their ETH: {format_eth(chain.provider.get_balance(recipient))}")
