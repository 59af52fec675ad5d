"""Send EMC from your wallet to another address (on devnet: fund operators from the deployer).

ape run send_emc --network ethereum:local:foundry --account TEST::0 --to 0x... --amount 500
"""

import click
from ape.cli import ConnectedProviderCommand, network_option

from scripts._operator import (
    chain_refusal,
    format_emc,
    load_contracts,
    operator_options,
    parse_emc,
    require_account,
)


@click.command(cls=ConnectedProviderCommand)
@network_option()
@operator_options
@click.option("--to", "recipient", required=True, help="The receiving address.")
@click.option("--amount", required=True, help="EMC to send.")
def cli(network, account, deployment_name, deployments_dir, recipient, amount):
    """Send EMC to an address."""
    account = require_account(account)
    token = load_contracts(network, deployment_name, deployments_dir)["EMCToken"]
    wei = parse_emc(amount)
    with chain_refusal("send"):
        token.transfer(recipient, wei, sender=account)
    click.echo(f"Sent {format_emc(wei)} from {account.address} to {recipient}")
    click.echo(f"  their balance: {format_emc(token.balanceOf(recipient))}")
