"""The serving and payment rule of a socket's invocations, shared by routers, validators and nodes.

Who may serve: a registered, non-blacklisted node that declares the socket's workload and that
the socket's terms admit. An issuer-only socket (``open_serving`` false: every socket
ComputeSocket mints, as it stores no serving terms) is served by its issuer alone: the node, or
the pool operator whose address stakes for the pool, that minted it. An open socket is served by
any such node; when ``stake_required`` it must hold an active compute stake, otherwise an
unstaked node may serve it too. Either way the issuer itself must stay an active compute node,
as ComputeSocket's ``can_use`` requires.

Who is paid what out of each price: the routing router ``ROUTER_SHARE_BPS`` (10 %), the issuer
``ISSUER_SHARE_BPS`` (10 %) when another node served its open socket, and the serving node the
rest; shares round down and the remainder goes to the node, so the parts sum to the price.
An issuer that serves its own socket is paid as the node.
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


def split_price(price: int, socket: SocketInfo, worker: str) -> PriceSplit:
    """Return the node's, router's and issuer's parts of ``price`` paid for serving ``socket``."""
    router = price * ROUTER_SHARE_BPS // TOTAL_BPS
    issuer = 0 if worker == socket.issuer else price * ISSUER_SHARE_BPS // TOTAL_BPS
    return PriceSplit(node=price - router - issuer, router=router, issuer=issuer)
