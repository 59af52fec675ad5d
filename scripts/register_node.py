"""Declare a compute node's capabilities in the node registry.

    ape run register_node --network ethereum:local:foundry --account TEST::6 \
        --gpu "RTX 4090" --memory-mb 24576 --storage-gb 500 \
        --workload matmul-f32 --workload mlp-infer

Measured E power and reputation are written by consensus; this sets the self-declared fields.
"""

import click
from ape.cli import network_option

from scripts._operator import (
    OperatorCommand,
    chain_refusal,
    load_contracts,
    operator_options,
    require_account,
)


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--gpu", default="", help="GPU model, empty for none.")
@click.option("--memory-mb", type=click.IntRange(min=0), default=0)
@click.option("--storage-gb", type=click.IntRange(min=0), default=0)
@click.option("--workload", "workloads", multiple=True, required=True, help="A workload id served.")
def cli(network, account, deployment_name, deployments_dir, gpu, memory_mb, storage_gb, workloads):
    """Declare the account's node capabilities."""
    account = require_account(account)
    if len(workloads) > 16 or any(len(w) > 32 for w in workloads) or len(gpu) > 64:
        raise click.BadParameter("at most 16 workloads of 32 characters, and a GPU name of 64")
    contracts = load_contracts(network, deployment_name, deployments_dir)
    staking = contracts["Staking"]
    with chain_refusal("register node"):
        staking.declare_node(gpu, memory_mb, storage_gb, list(workloads), sender=account)
    node = staking.nodes(account)
    click.echo(f"Declared node {account.address}")
    click.echo(
        f"  GPU: {node.gpu_model or 'none'}, memory {node.memory_mb} MiB, "
        f"storage {node.storage_gb} GB"
    )
    click.echo(f"  workloads: {', '.join(staking.node_workloads(account))}")
    click.echo(
        f"  E power: {node.e_power} (measured by consensus), staked compute node: "
        f"{staking.is_active(account, 4)}"
    )
