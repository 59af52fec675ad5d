"""The `emc` command line."""

import logging
import signal
import threading

import click
from rich.console import Console
from rich.table import Table

console = Console()


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def main(verbose: bool) -> None:
    """EMC Protocol: run and operate the agents of a decentralized compute network."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@main.command()
@click.option("--port", type=int, default=8545, show_default=True, help="anvil's JSON-RPC port.")
@click.option("--once", is_flag=True, help="Stop after bringing the devnet up, instead of serving.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    help="Where the agents' logs and ready files go (default: .emc/devnet in the repository).",
)
def devnet(port: int, once: bool, workdir: str | None) -> None:
    """Run the whole network on this machine: a local chain, the contracts and the actors.

    The routers and compute nodes run as agent processes on loopback; the user's signed demo
    traffic goes through them, and the records the routers gossip are billed on-chain.
    """
    from offchain.devnet import DEMO_WORKLOAD, ESCROW, start_devnet

    with console.status(
        "Starting anvil and the agents, deploying the contracts, staking the actors..."
    ):
        net = start_devnet(port=port, workdir=workdir)
    try:
        contracts = Table(
            title=f"Contracts on {net.anvil.url} (chain {net.chain.record['chain_id']})"
        )
        contracts.add_column("contract")
        contracts.add_column("address")
        contracts.add_column("block", justify="right")
        for name, address in net.chain.record["contracts"].items():
            contracts.add_row(name, address, str(net.chain.record["blocks"].get(name, "")))
        console.print(contracts)

        actors = Table(title="Actors (staked on-chain)")
        for column in ("actor", "address", "stake (EMC)", "gas"):
            actors.add_column(column)
        for actor in net.actors:
            gas = ", ".join(f"{op} {used:,}" for op, used in actor.gas.items())
            actors.add_row(actor.name, actor.account.address, f"{actor.stake // 10**18:,}", gas)
        console.print(actors)

        agents = Table(title=f"Agents on loopback (logs in {net.agents.workdir})")
        for column in ("agent", "pid", "peer id", "listening on", "log"):
            agents.add_column(column)
        for name, process in {**net.agents.routers, **net.agents.nodes}.items():
            listening = net.agents.router_addrs[name].split("/p2p/")[0] if "router" in name else "-"
            agents.add_row(
                name,
                str(process.pid),
                process.info["peer_id"],
                listening,
                process.log_path.name,
            )
        console.print(agents)
        market = net.market
        sockets = Table(
            title=f"Sockets held by the user {market.user.address} "
            f"(escrow in ComputeMarket: {ESCROW // 10**18:,} EMC)"
        )
        for column in ("socket", "workload", "minted by (serves it)", "price (EMC)"):
            sockets.add_column(column)
        for socket in market.sockets:
            sockets.add_row(
                str(socket.socket_id), socket.workload, socket.node, f"{socket.price / 10**18:.4f}"
            )
        console.print(sockets)
        if net.settlement is not None:
            report = net.settlement
            routers = list(net.agents.routers)
            traffic = Table(
                title=f"Demo traffic: {DEMO_WORKLOAD} orders signed by the user, "
                "by the node that ran them"
            )
            traffic.add_column("compute node")
            traffic.add_column("socket", justify="right")
            for router in routers:
                traffic.add_column(f"via {router}", justify="right")
            traffic.add_column("receipt and output verified", justify="right")
            traffic.add_column("records gossiped", justify="right")
            for node in net.agents.nodes:
                served = [s for s in report.served if s.node == node]
                address = net.agents.nodes[node].info["address"]
                traffic.add_row(
                    node,
                    ", ".join(str(i) for i in sorted({s.socket_id for s in served})) or "-",
                    *(str(sum(s.router == r for s in served)) for r in routers),
                    str(len(served)),
                    str(sum(r.receipt.worker == address for r in report.records)),
                )
            console.print(traffic)
            for refused in report.refused:
                console.print(
                    f"Refused by {refused.router}: a replay of order "
                    f"0x{refused.request_hash.hex()[:16]}... ({refused.reason}); no record, "
                    "billed nothing."
                )
            batches = Table(
                title="Demo traffic billed from its records, settled on-chain "
                "(4 validators' aggregate BLS seal)"
            )
            for column in ("height", "records", "billed (EMC)", "batch root", "commit gas"):
                batches.add_column(column, justify="right")
            for batch in report.batches:
                batches.add_row(
                    str(batch["height"]),
                    str(batch["invocations"]),
                    f"{batch['billed'] / 10**18:.4f}",
                    f"0x{batch['batch_root'].hex()[:16]}...",
                    f"{batch['gas']:,}",
                )
            console.print(batches)
            paid = Table(title="Rewards claimed")
            paid.add_column("account")
            paid.add_column("claimed (EMC)", justify="right")
            earned = {**report.claimed, **report.validator_rewards}
            for name, amount in earned.items():
                paid.add_row(name, f"{amount / 10**18:.4f}")
            console.print(paid)
        console.print("Deployment record: deployments/local.json, ABIs: abi/")
        if once:
            return
        console.print(f"Devnet running at {net.anvil.url}; Ctrl-C to stop.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        net.stop()


# The agents' commands live next to their agents (each module owns its flags).
from offchain.routers.router_cli import router  # noqa: E402
from offchain.workers.worker_cli import worker  # noqa: E402

main.add_command(router)
main.add_command(worker)
