"""Show an account's position: wallet, stake and roles, escrow, sockets held and listed.

    ape run position --network ethereum:local:foundry --account TEST::7
    ape run position --network ethereum:local:foundry --address 0x...

Read-only: it sends no transaction, so any address can be shown.
"""

import click
from ape.cli import network_option

from scripts._operator import (
    OperatorCommand,
    chosen_account,
    format_emc,
    load_contracts,
    operator_options,
    role_names,
)

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
        click.echo(
            f"  earnings claimed:  {format_emc(claimed)} "
            "(claim the rest with `claim_rewards --proof-file`)"
        )
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
