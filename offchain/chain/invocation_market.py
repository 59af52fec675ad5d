"""The invocation domain and a market view of one deployment, for routers and compute nodes.

Both sign or check invocation messages under the domain of the deployment's ComputeMarket on
its chain, and read sockets (and, for routers, registry entries and escrows) through a
``MarketView`` that they run in their nursery.
"""

from collections.abc import Callable
from pathlib import Path

from eth_account.signers.local import LocalAccount

from offchain.chain.chain_client import DEFAULT_ABI_DIR, DEFAULT_DEPLOYMENTS_DIR, ChainClient
from offchain.chain.market_view import MarketView, connect_market
from offchain.protocol.invocation import InvocationDomain

ZERO_ADDRESS = "0x" + "00" * 20


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


# ----------------------------------------------------------------------------------------------
# Setting up a market to invoke: what the devnet, the tests and the benches do on a fresh chain
# ----------------------------------------------------------------------------------------------


def mint_socket(
    client: ChainClient,
    node: LocalAccount,
    holder: str,
    workload: str,
    price: int,
    lifetime_s: int = 30 * 86_400,
    invocations_per_epoch: int = 1_000_000,
    open_serving: bool = False,
    stake_required: bool = True,
) -> int:
    """Mint, as the active compute node ``node``, a socket on ``workload`` to ``holder``.

    Return its id. The node must have declared ``workload``. The serving terms default to
    issuer-only: ``node`` alone serves the socket.
    """
    sockets = client["ComputeSocket"]
    socket_id = sockets.functions.next_token_id().call()
    expiry = client.w3.eth.get_block("latest")["timestamp"] + lifetime_s
    call = sockets.functions.mint(
        holder, workload, 1, price, expiry, invocations_per_epoch, "", open_serving, stake_required
    )
    client.transact(node, call)
    return socket_id


def deposit_escrow(
    client: ChainClient, funder: LocalAccount, account: LocalAccount, amount: int
) -> None:
    """Send ``account`` ``amount`` EMC from ``funder`` and escrow it in the market."""
    token, market = client["EMCToken"], client["ComputeMarket"]
    client.transact(funder, token.functions.transfer(account.address, amount))
    client.transact(account, token.functions.approve(market.address, amount))
    client.transact(account, market.functions.deposit(amount))


def set_socket_user(
    client: ChainClient, holder: LocalAccount, socket_id: int, user: str | None, expires: int
) -> None:
    """Name ``user`` the socket's ERC-4907 user until ``expires`` (None: revoke the use)."""
    call = client["ComputeSocket"].functions.setUser(
        socket_id, user or ZERO_ADDRESS, expires if user else 0
    )
    client.transact(holder, call)
