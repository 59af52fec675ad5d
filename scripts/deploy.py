"""Deploy and wire every EMC Protocol contract, idempotently.

    ape run deploy --network ethereum:local:foundry [--fresh] [--name NAME]

Writes `deployments/<name>.json` (contract name to address, chain id, blocks) and exports each
deployable's ABI to `abi/<Contract>.json`. Run again, it reuses every recorded contract that
still has code on the chain (a fork of a deployed chain included) and deploys only what is
missing; `--fresh` deploys everything anew.
"""

from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand, network_option

from scripts._deployment import (
    DEFAULT_ABI_DIR,
    DEFAULT_DEPLOYMENTS_DIR,
    DeploymentError,
    ensure_deployed,
    export_abis,
    load_record,
    record_path,
    save_record,
)

EMC = 10**18
INITIAL_SUPPLY = 1_000_000_000 * EMC
MIN_VALIDATOR_STAKE = 10_000 * EMC
MIN_ROUTER_STAKE = 1_000 * EMC
MIN_COMPUTE_STAKE = 100 * EMC
DEVNET_UNBONDING_SECONDS = 60
DEFAULT_UNBONDING_SECONDS = 7 * 24 * 3600
MARKET_FEE_BPS = 250  # the protocol fee on socket sales, 2.5 %
DEVNET_WITHDRAW_DELAY_SECONDS = 120  # longer than a devnet settlement round
DEFAULT_WITHDRAW_DELAY_SECONDS = 2 * 24 * 3600


def _is_local(network) -> bool:
    return network.name == "local" or network.name.endswith("-fork")


def _deployer(network, alias: str | None):
    if alias:
        return accounts.load(alias)
    if _is_local(network):
        return accounts.test_accounts[0]
    raise click.UsageError("--account ALIAS is required outside local and fork networks")


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option(
    "--account",
    "account_alias",
    default=None,
    help="Deployer account alias (local: test account 0).",
)
@click.option("--fresh", is_flag=True, help="Deploy every contract anew, ignoring the record.")
@click.option(
    "--name",
    "record_name",
    default=None,
    help="Deployment record name (default: the network's name).",
)
@click.option(
    "--deployments-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_DEPLOYMENTS_DIR,
    show_default=True,
)
@click.option(
    "--abi-dir", type=click.Path(path_type=Path), default=DEFAULT_ABI_DIR, show_default=True
)
@click.option(
    "--unbonding-period", type=int, default=None, help="Seconds (devnet 60, default 7 days)."
)
def cli(network, account_alias, fresh, record_name, deployments_dir, abi_dir, unbonding_period):
    """Deploy and wire the contracts, then write the deployment record and the ABIs."""
    deployer = _deployer(network, account_alias)
    name = record_name or network.name
    path = record_path(name, deployments_dir)
    try:
        record = load_record(path, chain.chain_id, fresh)
    except DeploymentError as error:
        raise click.ClickException(str(error)) from error
    record.deployer = deployer.address
    if unbonding_period is None:
        unbonding_period = (
            DEVNET_UNBONDING_SECONDS if _is_local(network) else DEFAULT_UNBONDING_SECONDS
        )

    click.echo(
        f"Deploying to {network.ecosystem.name}:{network.name} (chain {chain.chain_id}) "
        f"from {deployer.address}"
    )
    token = ensure_deployed(
        record, "EMCToken", lambda: deployer.deploy(project.EMCToken, INITIAL_SUPPLY), click.echo
    )
    staking = ensure_deployed(
        record,
        "Staking",
        lambda: deployer.deploy(
            project.Staking,
            token,
            unbonding_period,
            MIN_VALIDATOR_STAKE,
            MIN_ROUTER_STAKE,
            MIN_COMPUTE_STAKE,
        ),
        click.echo,
    )
    sockets = ensure_deployed(
        record, "ComputeSocket", lambda: deployer.deploy(project.ComputeSocket, staking), click.echo
    )
    # The treasury starts as the deployer; governance moves it with `set_treasury`. Consensus and
    # the reward contract are wired once they are deployed (`set_consensus`, `set_reward_contract`).
    withdraw_delay = (
        DEVNET_WITHDRAW_DELAY_SECONDS if _is_local(network) else DEFAULT_WITHDRAW_DELAY_SECONDS
    )
    ensure_deployed(
        record,
        "ComputeMarket",
        lambda: deployer.deploy(
            project.ComputeMarket, token, sockets, deployer.address, MARKET_FEE_BPS, withdraw_delay
        ),
        click.echo,
    )
    save_record(record, path)
    abi_paths = export_abis(abi_dir)
    click.echo(f"Deployment record: {path}")
    click.echo(f"ABIs: {', '.join(str(p) for p in abi_paths)}")
