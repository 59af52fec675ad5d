"""Shared pieces of the operator scripts (`ape run stake`, `ape run mint_socket`, ...).

Each operator script is an `OperatorCommand`: Ape's `ConnectedProviderCommand` with Ape's network
and account options, which refuses to work on an empty chain that Ape started for the command
(the running chain is the one `APE_FOUNDRY_HOST` names) and ends every failure a person can cause
with one `Error: ...` line: the chain's refusals (reverts), an account without ETH for gas, a
chain that does not answer. The contracts come from the deployment record that `ape run deploy`
wrote. `ape run <script> -v DEBUG ...` shows the call traces and tracebacks instead.
"""

import json
import os
import re
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click
import requests
from ape import chain, project
from ape.cli import ConnectedProviderCommand, account_option
from ape.exceptions import AccountsError, ApeException, ContractLogicError, TransactionError
from ape.logging import LogLevel, logger
from eth_account.messages import encode_typed_data

from offchain.chain.chain_client import DEFAULT_DEPLOYMENTS_DIR
from offchain.chain.deploy import record_path
from offchain.protocol.permit import permit_typed_data
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER, ROLE_VALIDATOR

# Ape's settings models warn at every command that loads a compiler (with pydantic-settings
# 2.16); nothing an operator can act on, and it would bury the line that matters.
warnings.filterwarnings("ignore", message="Field 'import_remapping' has an incomplete definition")

EMC = 10**18
# The role names operators type, over the one definition of the flags.
ROLES = {"validator": ROLE_VALIDATOR, "router": ROLE_ROUTER, "compute": ROLE_COMPUTE}
# The chain `emc devnet` (`make run`) serves.
DEVNET_URL = "http://127.0.0.1:8545"
_SEED_KEY = "emc_eth_key_seed"


class OperatorCommand(ConnectedProviderCommand):
    """An operator script's command: a running chain, and one line for every failure.

    Ape's foundry provider connects to the anvil at `APE_FOUNDRY_HOST` when one answers there,
    and otherwise starts an empty one of its own that stops with the command. An operator
    script has nothing to do on such a chain, so it stops at once and says where it looked.
    """

    # `deploy` sets this: deploying to a throwaway anvil is a use of its own.
    allows_own_chain = False

    def invoke(self, ctx: click.Context):
        if logger.level <= LogLevel.DEBUG.value:
            return super().invoke(ctx)
        with _quiet_call_traces(), one_line_errors():
            return super().invoke(ctx)

    def _invoke(self, ctx: click.Context, provider=None):
        if provider is not None and getattr(provider, "process", None) is not None:
            if not self.allows_own_chain:
                raise click.ClickException(no_chain_message())
        return super()._invoke(ctx, provider=provider)


@contextmanager
def one_line_errors():
    """Turn what a person can cause (a revert, too little ETH, no chain) into one error line."""
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except ContractLogicError as error:
        raise click.ClickException(f"refused by the chain: {error.message}") from error
    except AccountsError as error:
        raise click.ClickException(_accounts_error(error)) from error
    except ApeException as error:
        raise click.ClickException(f"{type(error).__name__}: {_first_line(error)}") from error
    except (ConnectionError, requests.ConnectionError, requests.Timeout) as error:
        message = f"lost the chain at {_chain_url()}: {_first_line(error)}"
        raise click.ClickException(message) from error


def started_own_chain() -> bool:
    """Whether Ape started the connected anvil for this command (no chain ran where it looked)."""
    return getattr(chain.provider, "process", None) is not None


def no_chain_message() -> str:
    """Say that no chain answered where Ape looked, and how to point it at one."""
    host = os.environ.get("APE_FOUNDRY_HOST")
    if host:
        return (
            f"no chain answers at {host}: start one there (`make run` serves the devnet at "
            f"{DEVNET_URL}) or set APE_FOUNDRY_HOST to your chain's URL"
        )
    return (
        "APE_FOUNDRY_HOST is not set, so Ape started an empty anvil for this command: "
        f"export APE_FOUNDRY_HOST={DEVNET_URL} (the devnet of `make run`) or your chain's URL"
    )


def _chain_url() -> str:
    return os.environ.get("APE_FOUNDRY_HOST") or "the configured host"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _accounts_error(error: AccountsError) -> str:
    text = str(error)
    if "meets or exceeds account balance" in text:
        found = re.search(r"account '(0x[0-9a-fA-F]{40})'", text)
        return gas_message(found.group(1) if found else "the account", "not enough")
    return _first_line(error)


def gas_message(address: str, how_much: str = "no") -> str:
    """Say that ``address`` cannot pay for gas, and how to fund it on the devnet."""
    return (
        f"{address} has {how_much} ETH to pay for gas: send it some (on the devnet: "
        f"ape run send_emc --account TEST::0 --to {address} --eth 1)"
    )


@contextmanager
def _quiet_call_traces():
    """Keep Ape from printing a reverted transaction's call trace: the error line says it."""
    from ape_ethereum.trace import Trace

    shown = Trace.show
    Trace.show = lambda self, *args, **kwargs: None
    try:
        yield
    finally:
        Trace.show = shown


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
    command = click.option(
        "--eth-key-seed",
        expose_value=False,
        callback=_remember_seed,
        help="Sign with the key an agent's --eth-key-seed (64 hex digits) derives, instead of "
        "--account: the address the agent proves.",
    )(command)
    return account_option(prompt=False)(command)


def _remember_seed(ctx: click.Context, _param, value: str | None) -> None:
    if value is None:
        return
    try:
        seed = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise click.BadParameter("a seed is 64 hex digits", param_hint="--eth-key-seed")
    ctx.meta[_SEED_KEY] = seed


def chosen_account(account):
    """Return the account of --account or --eth-key-seed (None if neither was given)."""
    seed = click.get_current_context().meta.get(_SEED_KEY)
    if seed is None:
        return account
    if account is not None:
        raise click.UsageError("give --account or --eth-key-seed, not both")
    from ape_accounts.accounts import ApeSigner

    from offchain.crypto.keys import generate_keypair

    return ApeSigner(private_key="0x" + generate_keypair(seed).private_key.hex())


def require_account(account):
    """Return the signing account, checked to hold ETH for gas; fail in one line otherwise."""
    account = chosen_account(account)
    if account is None:
        raise click.UsageError(
            "--account is required (an alias, or TEST::<n> on a local network), or --eth-key-seed"
        )
    if account.balance == 0:
        raise click.ClickException(gas_message(account.address))
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
            raise click.ClickException(
                f"{name} at {address} has no code on chain {chain.chain_id} at "
                f"{chain.provider.uri}: {path} was written for another chain; deploy here "
                "(`ape run deploy`) or set APE_FOUNDRY_HOST to the chain it was written for"
            )
        contracts[name] = getattr(project, name).at(address)
    return contracts


def parse_emc(text: str, unit: str = "EMC") -> int:
    """Return the wei amount of a decimal amount such as ``"100"`` or ``"0.25"`` (EMC or ETH)."""
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise click.BadParameter(f"not an {unit} amount: {text!r}") from error
    wei = value * EMC
    if value <= 0 or wei != wei.to_integral_value():
        raise click.BadParameter(f"not a positive {unit} amount with at most 18 decimals: {text!r}")
    return int(wei)


def format_emc(wei: int) -> str:
    """Return ``wei`` as a readable EMC amount."""
    text = f"{Decimal(wei) / EMC:,.18f}".rstrip("0").rstrip(".")
    return f"{text} EMC"


def format_eth(wei: int) -> str:
    """Return ``wei`` as a readable ETH amount."""
    return format_emc(wei).removesuffix(" EMC") + " ETH"


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
        raise click.ClickException(f"{action} failed: {_first_line(error)}") from error


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
