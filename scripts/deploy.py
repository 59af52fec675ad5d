"""Deploy and wire every EMC Protocol contract, idempotently.

    ape run deploy --network ethereum:local:foundry [--fresh] [--name NAME]

On a local network it deploys to the anvil at `APE_FOUNDRY_HOST` (`http://127.0.0.1:8545` for
the devnet of `make run`); when none answers there, or the variable is unset, Ape starts an
anvil of its own that stops when the command ends, and the script says so.

A thin shell over `offchain/chain/deploy.py`, the one deployment the devnet, the tests and the
benches also run: it passes Ape's connection and Ape's account (so any account Ape can sign with
deploys, an alias's keyfile included) and echoes each step. Every owned contract (Staking,
ComputeMarket, GPUComputeReward, ConsensusReward) ends owned by the Timelock (minimum delay 60 s
on a local chain, two days elsewhere); ComputeConsensus stays with the deployer until
`bootstrap`. Writes `deployments/<name>.json` (contract name to address, chain id, blocks) and
exports each deployable's ABI to `abi/<Contract>.json`. Run again, it reuses every recorded
contract that still has code on the chain (a fork of a deployed chain included) and deploys only
what is missing; `--fresh` deploys everything anew.
"""

import os
from pathlib import Path

import click
from ape import accounts, chain, networks, project
from ape.cli import network_option

from offchain.chain.artifacts import ArtifactError
from offchain.chain.chain_client import DEFAULT_ABI_DIR, DEFAULT_DEPLOYMENTS_DIR
from offchain.chain.deploy import (
    DEPLOYABLES,
    DeploymentError,
    Sender,
    deploy,
    parameters,
    record_path,
)
from scripts._operator import DEVNET_URL, OperatorCommand, started_own_chain


def _is_local(network) -> bool:
    return network.name == "local" or network.name.endswith("-fork")


def _deployer(network, alias: str | None):
    if alias:
        return accounts.load(alias)
    if _is_local(network):
        return accounts.test_accounts[0]
    raise click.UsageError("--account ALIAS is required outside local and fork networks")


def ape_sender(account) -> Sender:
    """Return a `Sender` that signs and submits through Ape's ``account`` (any account type)."""
    ecosystem = networks.provider.network.ecosystem

    def send(tx: dict) -> str:
        txn = ecosystem.create_transaction(chain_id=chain.chain_id, **tx)
        txn.sender = account.address
        return account.call(txn).txn_hash

    return Sender(account.address, send)


class DeployCommand(OperatorCommand):
    """An operator command that may also deploy to a throwaway anvil that Ape starts."""

    allows_own_chain = True


@click.command(cls=DeployCommand)
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
    path = record_path(record_name or network.name, deployments_dir)
    project.load_contracts()  # Ape compiles what changed since the last build, as `ape compile`
    click.echo(
        f"Deploying to {network.ecosystem.name}:{network.name} (chain {chain.chain_id}) "
        f"from {deployer.address}"
    )
    try:
        deploy(
            chain.provider.web3,
            ape_sender(deployer),
            path,
            abi_dir,
            parameters(_is_local(network), unbonding_period),
            fresh=fresh,
            echo=click.echo,
        )
    except (ArtifactError, DeploymentError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Deployment record: {path}")
    click.echo(f"ABIs: {', '.join(str(abi_dir / f'{name}.json') for name in DEPLOYABLES)}")
    if started_own_chain():
        host = os.environ.get("APE_FOUNDRY_HOST")
        where = f"no chain answered at {host}" if host else "APE_FOUNDRY_HOST is not set"
        click.echo(
            f"Note: {where}, so this deployed to an anvil that Ape started for this command and "
            f"stops now; to deploy to a running chain, set APE_FOUNDRY_HOST to its URL "
            f"({DEVNET_URL} for the devnet)"
        )
