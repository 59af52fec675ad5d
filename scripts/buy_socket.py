"""Buy a listed socket, paying its price in EMC.

    ape run buy_socket --network ethereum:local:foundry --account TEST::7 --token-id 1

Pays at most the listed price you saw (`--max-price`, default: the current listed price).
"""

import click
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
)

ZERO_ADDRESS = "0x" + "00" * 20


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--token-id", type=click.IntRange(min=1), required=True)
@click.option("--max-price", default=None, help="The most EMC to pay (default: the listed price).")
def cli(network, account, deployment_name, deployments_dir, token_id, max_price):
    """Buy a listed socket."""
    account = require_account(account)
    contracts = load_contracts(network, deployment_name, deployments_dir)
    token, sockets, market = (
        contracts["EMCToken"],
        contracts["ComputeSocket"],
        contracts["ComputeMarket"],
    )
    listing = market.listings(token_id)
    if listing.seller == ZERO_ADDRESS:
        raise click.ClickException(f"socket #{token_id} is not listed")
    limit = parse_emc(max_price) if max_price is not None else listing.price
    held = token.balanceOf(account)
    if held < listing.price:
        raise click.ClickException(
            f"not enough EMC: {format_emc(held)} held, socket #{token_id} costs "
            f"{format_emc(listing.price)}"
        )
    ensure_allowance(token, account, market, listing.price)
    with chain_refusal("buy socket"):
        receipt = market.buy(token_id, limit, sender=account)
    sold = next(iter(market.Sold.from_receipt(receipt)))
    socket = sockets.sockets(token_id)
    click.echo(f"Bought socket #{token_id} for {format_emc(sold.price)} from {sold.seller}")
    click.echo(f"  holder now:   {sockets.ownerOf(token_id)}")
    click.echo(f"  protocol fee: {format_emc(sold.fee)}")
    click.echo(f"  workload:     {socket.workload} on node {socket.node}")
