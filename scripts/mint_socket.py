"""Mint a compute socket issued by the calling (staked) compute node.

    ape run mint_socket --network ethereum:local:foundry --account TEST::6 \
        --workload matmul-f32 --capacity 50 --price 0.001 --days 30 --invocations 1000 \
        --serving issuer-only

The node must be an active staked compute node that declared the workload (`ape run register_node`).
`--serving` sets the socket's serving terms, fixed for its life: `issuer-only` (the default: the
node alone serves it), `open-staked` (any staked compute node that declares the workload) or
`open-any` (any node that declares it, staked or not). When another node serves it, the issuer is
paid GPUComputeReward's ISSUER_SHARE_BPS of the price.
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

# The serving terms by name: (open_serving, stake_required).
SERVING_TERMS = {
    "issuer-only": (False, True),
    "open-staked": (True, True),
    "open-any": (True, False),
}


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
@click.option(
    "--serving",
    type=click.Choice(list(SERVING_TERMS)),
    default="issuer-only",
    show_default=True,
    help="Which nodes may serve the socket (fixed at mint).",
)
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
    serving,
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
            *SERVING_TERMS[serving],
            sender=account,
        )
    token_id = next(iter(sockets.SocketMinted.from_receipt(receipt))).token_id
    click.echo(f"Minted socket #{token_id} issued by {account.address}")
    click.echo(f"  holder:      {sockets.ownerOf(token_id)}")
    click.echo(f"  workload:    {workload}, capacity {capacity} E, {invocations} invocations/epoch")
    click.echo(f"  price:       {format_emc(price_wei)} per invocation")
    click.echo(f"  expires at:  {expiry} ({days} days)")
    click.echo(f"  serving:     {serving}")
