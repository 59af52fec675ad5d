"""Leave a stake: request unbonding of an amount, or withdraw what has finished unbonding.

ape run unstake --network ethereum:local:foundry --account TEST::6 --amount 100
ape run unstake --network ethereum:local:foundry --account TEST::6 --withdraw
"""

import datetime

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
    role_names,
)


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--amount", default=None, help="EMC to start unbonding.")
@click.option("--withdraw", "do_withdraw", is_flag=True, help="Withdraw the unbonded EMC instead.")
def cli(network, account, deployment_name, deployments_dir, amount, do_withdraw):
    """Request unbonding of a stake, or withdraw it after the unbonding period."""
    account = require_account(account)
    if (amount is None) == (not do_withdraw):
        raise click.UsageError("give exactly one of --amount or --withdraw")
    staking = load_contracts(network, deployment_name, deployments_dir)["Staking"]
    if do_withdraw:
        pending = staking.pending_withdrawal(account)
        with chain_refusal("withdraw"):
            staking.withdraw(sender=account)
        click.echo(f"Withdrew {format_emc(pending)} to {account.address}")
        return
    wei = parse_emc(amount)
    with chain_refusal("unstake"):
        staking.request_unstake(wei, sender=account)
    unlock = staking.withdrawable_at(account)
    click.echo(f"Unbonding {format_emc(wei)} for {account.address}")
    click.echo(f"  remaining stake: {format_emc(staking.staked(account))}")
    click.echo(f"  roles:           {role_names(staking.roles(account))}")
    click.echo(f"  pending:         {format_emc(staking.pending_withdrawal(account))}")
    when = datetime.datetime.fromtimestamp(unlock, datetime.UTC).isoformat()
    click.echo(f"  withdrawable at: {unlock} ({when})")
