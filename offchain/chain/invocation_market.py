"""The invocation domain and a market view of one deployment, for routers and compute nodes.

Both sign or check invocation messages under the domain of the deployment's ComputeMarket on
its chain, and read sockets (and, for routers, registry entries and escrows) through a
``MarketView`` that they run in their nursery.
"""

from collections.abc import Callable
from pathlib import Path

from offchain.chain.client import DEFAULT_ABI_DIR, DEFAULT_DEPLOYMENTS_DIR
from offchain.chain.market_view import MarketView, connect_market
from offchain.protocol.invocation import InvocationDomain


def open_market_view(
    url: str,
    deployment: str = "local",
    chain_id: int | None = None,
    nonce_used: Callable[[str, int], bool] = lambda _user, _nonce: False,
    *,
    deployments_dir: Path = DEFAULT_DEPLOYMENTS_DIR,
    abi_dir: Path = DEFAULT_ABI_DIR,
    follow_s: float | None = 1.0,
) -> tuple[InvocationDomain, MarketView]:
    """Return the invocation domain of ``deployment`` on ``url`` and a view of its market.

    Raises ``ChainError`` when the endpoint does not answer, is another chain than
    ``chain_id``, or the deployment record is missing.
    """
    reader = connect_market(url, deployment, chain_id, deployments_dir, abi_dir)
    domain = InvocationDomain(reader.rpc.chain_id(), reader.addresses["ComputeMarket"])
    return domain, MarketView(reader, nonce_used, follow_s=follow_s)
