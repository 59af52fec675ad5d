"""Mint a compute socket served by the calling (staked) compute node.

    ape run mint_socket --network ethereum:local:foundry --account TEST::6 \
        --workload matmul-f32 --capacity 50 --price 0.001 --days 30 --invocations 1000

The node must be an active staked compute node that declared the workload (`ape run register_node`).
"""

import click
from ape import chain
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

DAY = 24 * 3600


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--workload", required=True, help="A workload id the node declared.")
@click.option("--capacity", type=click.IntRange(min=1), required=True, help="Capacity in E units.")
@click.option("--price", required=True, help="EMC per invocation, e.g. 0.001.")
@click.option(
    "--days", type=click.IntRange(min=1), default=30, show_default=True, help="Valid for."
)
@click.option(
    "--invocations",
    type=click.IntRange(min=1),
    default=1_000,
    show_default=True,
    help="Invocations per epoch.",
)
@click.option("--uri", default="", help="Metadata URI.")
@click.option("--to", "recipient", default=None, help="First holder (default: the node itself).")
def cli(
    network,
    account,
    deployment_name,
    deployments_dir,
    workload,
    capacity,
    price,
    days,
    invocations,
    uri,
    recipient,
):
    """Mint a socket for one of the node's workloads."""
    account = require_account(account)
    sockets = load_contracts(network, deployment_name, deployments_dir)["ComputeSocket"]
    price_wei = parse_emc(price)
    expiry = chain.pending_timestamp + days * DAY
    with chain_refusal("mint socket"):
        receipt = sockets.mint(
            recipient or account.address,
            workload,
            capacity,
            price_wei,
            expiry,
            invocations,
            uri,
            sender=account,
        )
    token_id = next(iter(sockets.SocketMinted.from_receipt(receipt))).token_id
    click.echo(f"Minted socket #{token_id} served by {account.address}")
    click.echo(f"  holder:      {sockets.ownerOf(token_id)}")
    click.echo(f"  workload:    {workload}, capacity {capacity} E, {invocations} invocations/epoch")
    click.echo(f"  price:       {format_emc(price_wei)} per invocation")
    click.echo(f"  expires at:  {expiry} ({days} days)")
