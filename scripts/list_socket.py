"""List a socket you hold for sale at a fixed price (or cancel its listing).

    ape run list_socket --network ethereum:local:foundry --account TEST::6 --token-id 1 --price 40
    ape run list_socket --network ethereum:local:foundry --account TEST::6 --token-id 1 --cancel

The socket stays in your wallet until sold; the market is approved to move this one socket.
"""

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


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--token-id", type=click.IntRange(min=1), required=True)
@click.option("--price", default=None, help="Price in EMC.")
@click.option("--cancel", is_flag=True, help="Cancel the listing instead.")
def cli(network, account, deployment_name, deployments_dir, token_id, price, cancel):
    """List a socket for sale, or cancel its listing."""
    account = require_account(account)
    if (price is None) == (not cancel):
        raise click.UsageError("give exactly one of --price or --cancel")
    contracts = load_contracts(network, deployment_name, deployments_dir)
    sockets, market = contracts["ComputeSocket"], contracts["ComputeMarket"]
    if cancel:
        with chain_refusal("cancel listing"):
            market.cancel_listing(token_id, sender=account)
        click.echo(f"Cancelled the listing of socket #{token_id}")
        return
    wei = parse_emc(price)
    holder = sockets.ownerOf(token_id)
    if holder != account.address:
        raise click.ClickException(f"not the holder of socket #{token_id}: {holder} holds it")
    with chain_refusal("approve the market"):
        if sockets.getApproved(token_id) != market.address and not sockets.isApprovedForAll(
            account, market
        ):
            sockets.approve(market, token_id, sender=account)
    with chain_refusal("list socket"):
        market.list_socket(token_id, wei, sender=account)
    fee = market.fee_for(wei)
    click.echo(f"Listed socket #{token_id} for {format_emc(wei)}")
    click.echo(f"  seller:            {account.address}")
    click.echo(f"  protocol fee:      {format_emc(fee)} ({market.fee_bps() / 100:g} %)")
    click.echo(f"  seller receives:   {format_emc(wei - fee)}")
