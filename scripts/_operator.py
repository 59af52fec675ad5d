"""Shared pieces of the operator scripts (`ape run stake`, `ape run mint_socket`, ...).

Each operator script is a click command on Ape's `ConnectedProviderCommand` with Ape's network and
account options. The contracts come from the deployment record that `ape run deploy` wrote; the
chain's refusals (reverts) become one clear error line, not a traceback.
"""

import json
from collections.abc import Callable
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click
from ape import chain, project
from ape.cli import account_option
from ape.exceptions import ContractLogicError, TransactionError
from eth_account.messages import encode_typed_data

from offchain.chain.chain_client import DEFAULT_DEPLOYMENTS_DIR
from offchain.chain.deploy import record_path
from offchain.protocol.permit import permit_typed_data
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER, ROLE_VALIDATOR

EMC = 10**18
# The role names operators type, over the one definition of the flags.
ROLES = {"validator": ROLE_VALIDATOR, "router": ROLE_ROUTER, "compute": ROLE_COMPUTE}


def operator_options(command: Callable) -> Callable:
    """Add the account and deployment-record options every operator script takes."""
    command = click.option(
        "--deployments-dir",
        type=click.Path(path_type=Path),
        default=DEFAULT_DEPLOYMENTS_DIR,
        show_default=True,
        help="Where `ape run deploy` wrote its records.",
    )(command)
    command = click.option(
        "--deployment",
        "deployment_name",
        default=None,
        help="Deployment record name (default: the network's name).",
    )(command)
    return account_option(prompt=False)(command)


def require_account(account):
    """Return ``account``, or fail with a usage error when none was given."""
    if account is None:
        raise click.UsageError("--account is required (an alias, or TEST::<n> on a local network)")
    return account


def load_contracts(network, deployment_name: str | None, deployments_dir: Path) -> dict:
    """Return the deployed contracts of the record, by name, checked to have code on this chain."""
    path = record_path(deployment_name or network.name, deployments_dir)
    if not path.exists():
        raise click.ClickException(f"no deployment record at {path}: run `ape run deploy` first")
    record = json.loads(path.read_text())
    if int(record["chain_id"]) != chain.chain_id:
        raise click.ClickException(
            f"{path} is for chain {record['chain_id']}, connected to chain {chain.chain_id}"
        )
    contracts = {}
    for name, address in record["contracts"].items():
        if not address or not chain.provider.get_code(address):
            raise click.ClickException(f"{name} at {address} has no code on this chain")
        contracts[name] = getattr(project, name).at(address)
    return contracts


def parse_emc(text: str) -> int:
    """Return the wei amount of a decimal EMC amount such as ``"100"`` or ``"0.25"``."""
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise click.BadParameter(f"not an EMC amount: {text!r}") from error
    wei = value * EMC
    if value <= 0 or wei != wei.to_integral_value():
        raise click.BadParameter(f"not a positive EMC amount with at most 18 decimals: {text!r}")
    return int(wei)


def format_emc(wei: int) -> str:
    """Return ``wei`` as a readable EMC amount."""
    text = f"{Decimal(wei) / EMC:,.18f}".rstrip("0").rstrip(".")
    return f"{text} EMC"


def role_flags(names: tuple[str, ...]) -> int:
    """Return the Staking role flags for role names."""
    flags = 0
    for name in names:
        flags |= ROLES[name]
    return flags


def role_names(flags: int) -> str:
    """Return the names of the role flags, or 'none'."""
    return ", ".join(name for name, flag in ROLES.items() if flags & flag) or "none"


@contextmanager
def chain_refusal(action: str):
    """Turn a revert inside the block into one clear error line naming ``action``."""
    try:
        yield
    except ContractLogicError as error:
        raise click.ClickException(f"{action} refused by the chain: {error.message}") from error
    except TransactionError as error:
        raise click.ClickException(f"{action} failed: {error}") from error


def ensure_allowance(token, owner, spender, amount: int) -> None:
    """Approve ``spender`` for ``amount`` EMC of ``owner`` unless already allowed."""
    if token.allowance(owner, spender) < amount:
        with chain_refusal("approve"):
            token.approve(spender, amount, sender=owner)


def sign_permit(account, token, spender: str, value: int, deadline: int):
    """Return ``account``'s EIP-2612 permit signature (v, r, s) for EMCToken."""
    typed = permit_typed_data(
        token.address,
        chain.chain_id,
        account.address,
        spender,
        value,
        token.nonces(account.address),
        deadline,
    )
    signature = account.sign_message(encode_typed_data(full_message=typed))
    if signature is None:
        raise click.ClickException("the account declined to sign the permit")
    return signature
