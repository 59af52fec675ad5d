"""Show an account's position: wallet, stake and roles, escrow, rewards, sockets held and listed.

    ape run position --network ethereum:local:foundry --account TEST::7
    ape run position --network ethereum:local:foundry --address 0x...

Read-only: it sends no transaction, so any address can be shown. Consensus rewards are read
from the chain height by height: claimed, claimable now, and waiting (for the next commit to
seal the last height's signers, or for ConsensusReward to hold enough EMC to book a height).
Compute and routing earnings are claimed with a proof against the rewards root; what is still
unclaimed is known only from the rewards tree, which the validators' proof service will hand
out, and that service does not run yet.
"""

import click
from ape.cli import network_option

from offchain.protocol.roles import ROLE_VALIDATOR
from scripts._operator import (
    OperatorCommand,
    chosen_account,
    format_emc,
    load_contracts,
    operator_options,
    role_names,
)
from scripts._rewards import consensus_rewards, height_ranges

ZERO_ADDRESS = "0x" + "00" * 20
REWARD_CONTRACTS = ("GPUComputeReward", "ConsensusReward")


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--address", default=None, help="Show this address instead of --account.")
def cli(network, account, deployment_name, deployments_dir, address):
    """Print the account's stakes, escrow, claimable rewards and sockets."""
    account = chosen_account(account)
    if address is None and account is None:
        raise click.UsageError("give --account, --eth-key-seed or --address")
    who = address or account.address
    contracts = load_contracts(network, deployment_name, deployments_dir)
    token, staking = contracts["EMCToken"], contracts["Staking"]
    click.echo(f"Position of {who}")
    click.echo(f"  wallet:            {format_emc(token.balanceOf(who))}")
    click.echo(
        f"  stake:             {format_emc(staking.staked(who))} "
        f"(roles: {role_names(staking.roles(who))})"
    )
    pending = staking.pending_withdrawal(who)
    if pending:
        click.echo(
            f"  unbonding:         {format_emc(pending)} until {staking.withdrawable_at(who)}"
        )
    if "ComputeMarket" in contracts:
        market = contracts["ComputeMarket"]
        click.echo(
            f"  escrow:            {format_emc(market.escrow(who))} "
            f"(spent settled {format_emc(market.spent_settled(who))})"
        )
        requested = market.withdrawal_requested(who)
        if requested:
            click.echo(
                f"  withdrawal:        {format_emc(requested)} from {market.withdrawable_at(who)}"
            )
    if "GPUComputeReward" in contracts:
        claimed = contracts["GPUComputeReward"].claimed(who)
        click.echo(f"  earnings claimed:  {format_emc(claimed)} (compute and routing)")
        click.echo(
            "    the rest is claimed with a proof from the validators' proof service, "
            "which does not run yet"
        )
    if "ConsensusReward" in contracts and "ComputeConsensus" in contracts:
        _show_consensus_rewards(contracts, who)
    for name in REWARD_CONTRACTS:
        if name not in contracts:
            click.echo(f"  {name + ':':<19}not deployed")
    if "ComputeSocket" in contracts:
        sockets = contracts["ComputeSocket"]
        held = sockets.balanceOf(who)
        click.echo(f"  sockets held:      {held}")
        for index in range(held):
            token_id = sockets.tokenOfOwnerByIndex(who, index)
            socket = sockets.sockets(token_id)
            line = (
                f"    #{token_id}: {socket.workload}, {socket.capacity} E, "
                f"{format_emc(socket.price)}/invocation, node {socket.node}"
            )
            if "ComputeMarket" in contracts:
                listing = contracts["ComputeMarket"].listings(token_id)
                if listing.seller == who:
                    line += f", listed at {format_emc(listing.price)}"
            click.echo(line)


def _show_consensus_rewards(contracts: dict, who: str) -> None:
    rewards = consensus_rewards(contracts, who)
    signed = rewards.claimed_heights or rewards.claimable_heights or rewards.unbooked_heights
    if not signed and not contracts["Staking"].is_active(who, ROLE_VALIDATOR):
        return
    click.echo(f"  consensus rewards: {format_emc(rewards.claimed)} claimed", nl=False)
    if rewards.claimed_heights:
        click.echo(f" (heights {height_ranges(rewards.claimed_heights)})", nl=False)
    click.echo(f", {format_emc(rewards.claimable)} claimable now", nl=False)
    if rewards.claimable_heights:
        heights = [height for height, _ in rewards.claimable_heights]
        click.echo(f" (heights {height_ranges(heights)}: `claim_rewards --consensus`)", nl=False)
    click.echo()
    if rewards.unbooked_heights:
        click.echo(
            f"    {format_emc(rewards.unbooked)} for heights "
            f"{height_ranges(rewards.unbooked_heights)} waits for ConsensusReward to hold "
            "enough EMC to book it"
        )
    if rewards.last_height:
        click.echo(
            f"    height {rewards.last_height}, the last committed, pays its signers once the "
            "next commit seals them"
        )
