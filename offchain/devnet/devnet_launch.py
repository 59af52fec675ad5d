"""``start_devnet``: the devnet brought up in order, and ``Devnet``, which stops it."""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from offchain.chain.anvil import Anvil, start_anvil
from offchain.chain.chain_client import ChainClient
from offchain.chain.deploy import deploy_contracts
from offchain.devnet.demo_settlement import SettlementReport, run_demo_settlement
from offchain.devnet.devnet_agents import DevnetAgents, start_agents, wait_for_agents
from offchain.devnet.devnet_chain import (
    Actor,
    DemoMarket,
    bring_actors_on_chain,
    fund_pools_and_bootstrap,
    open_market,
)
from offchain.devnet.devnet_params import DEFAULT_WORKDIR

log = logging.getLogger(__name__)


@dataclass
class Devnet:
    """A running devnet: the chain, the contracts, the actors and their agent processes."""

    anvil: Anvil
    chain: ChainClient
    actors: list[Actor]
    agents: DevnetAgents
    market: DemoMarket
    settlement: SettlementReport | None = None

    def stop(self) -> None:
        """Stop every process the devnet started: the agents, then anvil."""
        try:
            self.agents.stop()
        finally:
            self.anvil.stop()


def start_devnet(port: int | None = None, demo: bool = True, workdir: Path | None = None) -> Devnet:
    """Start anvil, deploy fresh contracts, stake the actors, start the agents, settle demo traffic.

    The agents start once their stake is on-chain: the routers read it from there at start-up.
    The user's sockets and escrow go on-chain while they start. Their logs and ready files go to
    ``workdir`` (default ``.emc/devnet/``).
    """
    started = time.monotonic()
    anvil: Anvil | None = None
    agents: DevnetAgents | None = None
    try:
        anvil = start_anvil(port=port)
        deploy_contracts(anvil.url, fresh=True)
        chain = ChainClient(anvil.url)
        log.info("contracts deployed (%.1f s)", time.monotonic() - started)
        actors = bring_actors_on_chain(chain)
        log.info("actors on-chain (%.1f s)", time.monotonic() - started)
        agents = start_agents(
            Path(workdir) if workdir is not None else DEFAULT_WORKDIR,
            anvil.url,
            chain.record["chain_id"],
        )
        fund_pools_and_bootstrap(chain)  # while the agents start
        market = open_market(chain, actors)
        wait_for_agents(agents, actors)
        log.info("agents up and linked (%.1f s)", time.monotonic() - started)
        settlement = run_demo_settlement(chain, actors, agents, market) if demo else None
    except BaseException:
        try:
            if agents is not None:
                agents.stop()
        finally:
            if anvil is not None:
                anvil.stop()
        raise
    log.info("devnet up at %s in %.1f s", anvil.url, time.monotonic() - started)
    return Devnet(
        anvil=anvil,
        chain=chain,
        actors=actors,
        agents=agents,
        market=market,
        settlement=settlement,
    )
