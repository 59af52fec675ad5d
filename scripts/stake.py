"""Stake EMC for one or more roles.

    ape run stake --network ethereum:local:foundry --account TEST::6 --role compute --amount 100

Approves Staking for the amount when needed, stakes, and prints the account's stake and roles.
"""

import click
from ape.cli import network_option

from scripts._operator import (
    ROLES,
    OperatorCommand,
    chain_refusal,
    ensure_allowance,
    format_emc,
    load_contracts,
    operator_options,
    parse_emc,
    require_account,
    role_flags,
    role_names,
)


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--role", "roles", type=click.Choice(list(ROLES)), multiple=True, required=True)
@click.option("--amount", required=True, help="EMC to add to the stake, e.g. 100 or 0.5.")
def cli(network, account, deployment_name, deployments_dir, roles, amount):
    """Stake EMC for the given roles."""
    account = require_account(account)
    contracts = load_contracts(network, deployment_name, deployments_dir)
    token, staking = contracts["EMCToken"], contracts["Staking"]
    wei = parse_emc(amount)
    flags = role_flags(roles)
    balance = token.balanceOf(account)
    if balance < wei:
        raise click.ClickException(
            f"not enough EMC: {format_emc(balance)} held, {format_emc(wei)} needed"
        )
    ensure_allowance(token, account, staking, wei)
    with chain_refusal("stake"):
        staking.stake(flags, wei, sender=account)
    click.echo(f"Staked {format_emc(wei)} from {account.address}")
    click.echo(f"  total stake: {format_emc(staking.staked(account))}")
    click.echo(f"  roles:       {role_names(staking.roles(account))}")
    click.echo(f"  active:      {staking.is_active(account, flags)}")
