"""The serving and payment rule of a socket's invocations, shared by routers, validators and nodes.

ComputeSocket applies the same rule on-chain (``can_serve``) and GPUComputeReward publishes the
same split (``split_price``); ``tests/contracts/test_terms_agree.py`` holds the two sides equal.

Who may serve: a registered, non-blacklisted node that declares the socket's workload and that
the socket's serving terms, fixed by its issuer at mint, admit. An issuer-only socket
(``open_serving`` false, the default) is served by its issuer alone: the node, or the pool
operator whose address stakes for the pool, that minted it. An open socket is served by any such
node; when ``stake_required`` it must hold an active compute stake, otherwise an unstaked node
may serve it too. Either way the issuer itself must stay an active compute node, as
ComputeSocket's ``can_use`` and ``can_serve`` require.

Who is paid what out of each price: the routing router ``ROUTER_SHARE_BPS`` (10 %, the default
of GPUComputeReward's ``router_share_bps``), the issuer ``ISSUER_SHARE_BPS`` (10 %) when another
node served its open socket, and the serving node the rest; shares round down and the remainder
goes to the node, so the parts sum to the price. An issuer that serves its own socket is paid as
the node.
"""

from offchain.protocol.invocation.constants import ISSUER_SHARE_BPS, ROUTER_SHARE_BPS, TOTAL_BPS
from offchain.protocol.invocation.types import NodeInfo, PriceSplit, SocketInfo


def socket_price(socket: SocketInfo, units: int) -> int:
    """Return the price ``socket``'s terms set for an invocation of ``units`` units.

    Sockets price per invocation, whatever its units: the units are recorded for reputation and
    accounting, not billed.
    """
    return socket.price


def may_serve(socket: SocketInfo, worker: str, node: NodeInfo) -> bool:
    """Return whether ``socket``'s terms let ``worker`` (with registry entry ``node``) serve it."""
    if socket.workload not in node.workloads:
        return False
    return socket.open_serving or worker == socket.issuer


def needs_stake(socket: SocketInfo, worker: str) -> bool:
    """Return whether ``worker`` must hold an active compute stake to serve ``socket``."""
    return worker == socket.issuer or socket.stake_required


def admits(socket: SocketInfo, worker: str, node: NodeInfo | None) -> bool:
    """Return whether ``worker``, whose registry entry is ``node``, may serve ``socket``.

    That is ``check_node``'s verdict without its reason: a registered, non-blacklisted node that
    ``may_serve`` the socket, staked where it ``needs_stake``.
    """
    if node is None or node.blacklisted or not may_serve(socket, worker, node):
        return False
    return node.staked or not needs_stake(socket, worker)


def price_split(
    price: int, issuer_served: bool, router_share_bps: int = ROUTER_SHARE_BPS
) -> PriceSplit:
    """Return the node's, router's and issuer's parts of ``price``.

    ``issuer_served`` says whether the serving node is the socket's issuer (then the issuer has
    no part of its own: it is paid as the node). ``router_share_bps`` is GPUComputeReward's
    ``router_share_bps``; with the issuer's share it is at most ``TOTAL_BPS``.
    """
    if not 0 <= router_share_bps <= TOTAL_BPS - ISSUER_SHARE_BPS:
        raise ValueError(f"router share {router_share_bps} bps leaves the node no part")
    if price < 0:
        raise ValueError(f"negative price {price}")
    router = price * router_share_bps // TOTAL_BPS
    issuer = 0 if issuer_served else price * ISSUER_SHARE_BPS // TOTAL_BPS
    return PriceSplit(node=price - router - issuer, router=router, issuer=issuer)


def split_price(
    price: int, socket: SocketInfo, worker: str, router_share_bps: int = ROUTER_SHARE_BPS
) -> PriceSplit:
    """Return the node's, router's and issuer's parts of ``price`` paid for serving ``socket``."""
    return price_split(price, worker == socket.issuer, router_share_bps)
