"""`emc router`: run a smart router from a config file plus flags."""

import logging
import os

import click
import trio

from offchain.routers.agent import RouterAgent
from offchain.routers.config import RouterConfig
from offchain.runtime import gc_policy
from offchain.runtime.config_files import ConfigError, load_config
from offchain.runtime.logs import configure_logging
from offchain.runtime.runner import run_until_signal

logger = logging.getLogger(__name__)


@click.command("router")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="TOML file with RouterConfig keys.",
)
@click.option("--listen", help="Listen multiaddr, e.g. /ip4/0.0.0.0/tcp/4001.")
@click.option("--peer", "peers", multiple=True, help="Another router's multiaddr (repeatable).")
@click.option("--identity-seed", help="64 hex digits: the libp2p identity seed.")
@click.option(
    "--eth-key-seed",
    help="64 hex digits: the Ethereum key seed. The router proves the address of the key derived "
    "from it (offchain.crypto.keys.generate_keypair), so stake from that key (random if unset).",
)
@click.option(
    "--staked",
    multiple=True,
    help="An address taken as a staked compute node, chain or not (repeatable).",
)
@click.option(
    "--staked-router",
    "staked_routers",
    multiple=True,
    help="An address taken as a staked router, chain or not: only staked routers may be mesh "
    "neighbours (repeatable).",
)
@click.option(
    "--staked-validator",
    "staked_validators",
    multiple=True,
    help="An address taken as a staked validator, chain or not: validators may join gossip "
    "(repeatable).",
)
@click.option(
    "--chain-rpc",
    help="Read stake from the Staking contract through this JSON-RPC URL (Staking.is_active).",
)
@click.option(
    "--deployment",
    help="The deployment record naming the contracts: a name in deployments/ (default local) "
    "or a path to a .json record.",
)
@click.option("--chain-id", type=int, help="Refuse to start unless the chain has this id.")
@click.option(
    "--stake-follow",
    "stake_follow_s",
    type=float,
    help="Read the Staking events this often and re-read the addresses they name, in seconds "
    "(default 1; 0: no events, sweeps only).",
)
@click.option(
    "--stake-refresh",
    "stake_refresh_s",
    type=float,
    help="Re-read the stake of every tracked address this often, in seconds (default 60).",
)
@click.option("--max-connections", type=int)
@click.option("--max-in-flight", type=int)
@click.option("--request-timeout", "request_timeout_s", type=float)
@click.option("--read-timeout", "read_timeout_s", type=float)
@click.option("--ping-interval", "ping_interval_s", type=float)
@click.option(
    "--check-invocations/--no-check-invocations",
    default=None,
    help="Serve signed invocation orders only, checked against the chain's ComputeMarket "
    "(needs --chain-rpc; off by default).",
)
@click.option(
    "--invocation-rate",
    "invocation_rate_per_s",
    type=float,
    help="Orders a second one signer may send (default 200).",
)
@click.option(
    "--gossip/--no-gossip",
    default=None,
    help="Run gossipsub with mesh routers and validators (on by default).",
)
@click.option(
    "--strikes",
    type=int,
    help="Refusals of a peer's input within a minute that cut it off (default 5).",
)
@click.option(
    "--source-cut-offs",
    type=int,
    help="Peers cut off from one IP address within a minute before it is refused new "
    "connections for the cool-down (default 3; 0: never).",
)
@click.option(
    "--cool-down",
    "cool_down_s",
    type=float,
    help="Seconds a cut-off peer is refused for (default 300).",
)
@click.option("--metrics-port", type=int, help="Serve Prometheus metrics on this port (0: any).")
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False),
    help="Write {peer_id, addrs, metrics_port, pid, address} here once listening.",
)
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def router(
    config_path: str | None,
    peers: tuple[str, ...],
    staked: tuple[str, ...],
    staked_routers: tuple[str, ...],
    staked_validators: tuple[str, ...],
    **flags: object,
) -> None:
    """Run a smart router that holds compute-node connections and routes requests."""
    overrides = dict(
        flags,
        peers=peers,
        staked=staked,
        staked_routers=staked_routers,
        staked_validators=staked_validators,
    )
    try:
        config = load_config(RouterConfig, config_path, overrides)
    except (ConfigError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    chain_errors: tuple[type[Exception], ...] = ()
    if config.chain_rpc is not None:  # web3 is imported only for a router that reads the chain
        from offchain.chain.chain_client import ChainError

        chain_errors = (ChainError,)
    try:
        agent = RouterAgent(config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except chain_errors as exc:  # no answer, another chain, or no such deployment record
        raise click.ClickException(str(exc)) from exc
    configure_logging("router", agent.me, config.log_level)
    gc_policy.tune_process()
    trio.run(run_until_signal, agent.run)
    logger.info("router stopped")
    # Everything is closed; skip the interpreter's slow teardown of libp2p's object graph.
    logging.shutdown()
    os._exit(0)
