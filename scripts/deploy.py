"""Deploy and wire every EMC Protocol contract, idempotently.

    ape run deploy --network ethereum:local:foundry [--fresh] [--name NAME]

On a local network it deploys to the anvil at `APE_FOUNDRY_HOST` (`http://127.0.0.1:8545` for
the devnet of `make run`); when none answers there, or the variable is unset, Ape starts an
anvil of its own that stops when the command ends, and the script says so.

Every owned contract (Staking, ComputeMarket, GPUComputeReward, ConsensusReward) ends owned by
the Timelock (snekmate's timelock controller, the deployer its proposer and executor, minimum
delay 60 s on a local chain, two days elsewhere); ComputeConsensus stays with the deployer until
`bootstrap`, which gives its ownership up. Writes `deployments/<name>.json` (contract name to
address, chain id, blocks) and exports each deployable's ABI to `abi/<Contract>.json`. Run
again, it reuses every recorded contract that still has code on the chain (a fork of a deployed
chain included) and deploys only what is missing; `--fresh` deploys everything anew.
"""

import os
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import network_option

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
from scripts._operator import DEVNET_URL, OperatorCommand, started_own_chain

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
EMISSION_PER_COMMIT = 5 * EMC  # proof-of-compute emission released by each commit
CONSENSUS_REWARD_PER_COMMIT = 10 * EMC  # split among each commit's signers by stake
DEVNET_EPOCH_LENGTH = 10  # heights per epoch: validator-set changes wait for a boundary
DEFAULT_EPOCH_LENGTH = 1_000
DOUBLE_SIGN_PENALTY = 5_000 * EMC
REPORTER_SHARE_BPS = 1_000  # the reporter of a double-sign gets 10 % of the slash
DEVNET_TIMELOCK_DELAY_SECONDS = 60  # governance calls wait this long on the devnet
DEFAULT_TIMELOCK_DELAY_SECONDS = 2 * 24 * 3600
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def _is_local(network) -> bool:
    return network.name == "local" or network.name.endswith("-fork")


def _deployer(network, alias: str | None):
    if alias:
        return accounts.load(alias)
    if _is_local(network):
        return accounts.test_accounts[0]
    raise click.UsageError("--account ALIAS is required outside local and fork networks")


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
    market = ensure_deployed(
        record,
        "ComputeMarket",
        lambda: deployer.deploy(
            project.ComputeMarket, token, sockets, deployer.address, MARKET_FEE_BPS, withdraw_delay
        ),
        click.echo,
    )
    # The invocation digests under the market's EIP-712 domain, for integrators to check their
    # signing against the chain (docs/invocation.md).
    ensure_deployed(
        record,
        "InvocationDigest",
        lambda: deployer.deploy(project.InvocationDigest, market),
        click.echo,
    )
    gpu_reward = ensure_deployed(
        record,
        "GPUComputeReward",
        lambda: deployer.deploy(project.GPUComputeReward, token, EMISSION_PER_COMMIT),
        click.echo,
    )
    consensus_reward = ensure_deployed(
        record,
        "ConsensusReward",
        lambda: deployer.deploy(project.ConsensusReward, token, CONSENSUS_REWARD_PER_COMMIT),
        click.echo,
    )
    epoch_length = DEVNET_EPOCH_LENGTH if _is_local(network) else DEFAULT_EPOCH_LENGTH
    consensus = ensure_deployed(
        record,
        "ComputeConsensus",
        lambda: deployer.deploy(
            project.ComputeConsensus,
            staking,
            token,
            market,
            gpu_reward,
            consensus_reward,
            epoch_length,
            DOUBLE_SIGN_PENALTY,
            REPORTER_SHARE_BPS,
        ),
        click.echo,
    )
    _wire(deployer, staking, market, gpu_reward, consensus_reward, consensus)
    delay = DEVNET_TIMELOCK_DELAY_SECONDS if _is_local(network) else DEFAULT_TIMELOCK_DELAY_SECONDS
    timelock = ensure_deployed(
        record,
        "Timelock",
        lambda: deployer.deploy(
            project.Timelock, delay, [deployer.address], [deployer.address], ZERO_ADDRESS
        ),
        click.echo,
    )
    _hand_to_timelock(deployer, timelock, (staking, market, gpu_reward, consensus_reward))
    save_record(record, path)
    abi_paths = export_abis(abi_dir)
    click.echo(f"Deployment record: {path}")
    click.echo(f"ABIs: {', '.join(str(p) for p in abi_paths)}")
    if started_own_chain():
        host = os.environ.get("APE_FOUNDRY_HOST")
        where = f"no chain answered at {host}" if host else "APE_FOUNDRY_HOST is not set"
        click.echo(
            f"Note: {where}, so this deployed to an anvil that Ape started for this command and "
            f"stops now; to deploy to a running chain, set APE_FOUNDRY_HOST to its URL "
            f"({DEVNET_URL} for the devnet)"
        )


def _wire(deployer, staking, market, gpu_reward, consensus_reward, consensus) -> None:
    """Point every settlement hook at ComputeConsensus, skipping what is already wired."""
    steps = (
        (staking.slasher, staking.set_slasher, consensus),
        (market.consensus, market.set_consensus, consensus),
        (market.reward_contract, market.set_reward_contract, gpu_reward),
        (gpu_reward.consensus, gpu_reward.set_consensus, consensus),
        (consensus_reward.consensus, consensus_reward.set_consensus, consensus),
    )
    for current, setter, target in steps:
        wired = current()
        if wired == ZERO_ADDRESS:
            setter(target, sender=deployer)
            name = f"{setter.contract.contract_type.name}.{setter.abis[0].name}"
            click.echo(f"wired {name} -> {target.address}")
        elif wired != target.address:
            click.echo(
                f"warning: {setter.abis[0].name} already points at {wired}, not {target.address}"
            )


def _hand_to_timelock(deployer, timelock, owned) -> None:
    """Transfer every owned contract still held by the deployer to the timelock."""
    for contract in owned:
        current = contract.owner()
        if current == deployer.address:
            contract.transfer_ownership(timelock, sender=deployer)
            click.echo(f"{contract.contract_type.name} owner -> Timelock {timelock.address}")
        elif current != timelock.address:
            click.echo(f"warning: {contract.contract_type.name} is owned by {current}")
