"""`emc worker`: run a compute node from a config file plus flags."""

import logging
import os

import click
import trio

from offchain.runtime.config_files import ConfigError, load_config
from offchain.runtime.logs import configure_logging
from offchain.runtime.runner import run_until_signal
from offchain.workers.node import NodeAgent, NodeConfig

logger = logging.getLogger(__name__)


@click.command("worker")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="TOML file with NodeConfig keys.",
)
@click.option("--router", "routers", multiple=True, help="A router multiaddr (repeatable).")
@click.option(
    "--workload",
    "workloads",
    multiple=True,
    help="A workload to serve, NAME or NAME=KIND (repeatable).",
)
@click.option("--links", type=int, help="How many routers to stay linked to (default 2).")
@click.option("--e-power", type=int)
@click.option("--parallel", type=int)
@click.option("--queue-size", type=int)
@click.option("--listen", help="Also listen here (off by default: no public port is needed).")
@click.option("--identity-seed", help="64 hex digits: the libp2p identity seed.")
@click.option(
    "--eth-key-seed",
    help="64 hex digits: the Ethereum key seed. The node proves the address of the key derived "
    "from it (offchain.crypto.keys.generate_keypair), so stake from that key (random if unset).",
)
@click.option("--backoff-initial", "backoff_initial_s", type=float)
@click.option("--backoff-max", "backoff_max_s", type=float)
@click.option(
    "--strikes",
    type=int,
    help="Refusals of a peer's input within a minute that cut it off (default 5).",
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
    help="Write {peer_id, metrics_port, pid, address} here once up.",
)
@click.option(
    "--chain-rpc",
    help="JSON-RPC endpoint of the chain whose ComputeMarket the node's receipts are signed "
    "under and whose sockets price them (without it, signed orders are refused).",
)
@click.option("--deployment", help="The deployment record: a name in deployments/ or a path.")
@click.option("--chain-id", type=int, help="Refuse to start unless the endpoint is this chain.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def worker(
    config_path: str | None, routers: tuple[str, ...], workloads: tuple[str, ...], **flags: object
) -> None:
    """Run a compute node that dials out to routers and serves their requests."""
    overrides = dict(flags, routers=routers, workloads=workloads)
    try:
        config = load_config(NodeConfig, config_path, overrides)
        agent = NodeAgent(config)
    except (ConfigError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    except RuntimeError as exc:  # ChainError: no answer, another chain, no deployment record
        raise click.ClickException(str(exc)) from exc
    configure_logging("worker", agent.me, config.log_level)
    trio.run(run_until_signal, agent.run)
    logger.info("worker stopped")
    # Everything is closed; skip the interpreter's slow teardown of libp2p's object graph.
    logging.shutdown()
    os._exit(0)
