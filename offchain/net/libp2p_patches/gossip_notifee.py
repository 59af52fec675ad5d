"""Pubsub that opens no stream to a peer merely because it connected (py-libp2p 0.8.1).

py-libp2p's ``Pubsub`` registers a network notifee (``PubsubNotifee``) that opens a
``/meshsub`` stream to every peer that connects. A router holds thousands of compute nodes and
callers that do not speak it, and gossips only with admitted routers and validators
(``offchain/routers/gossip.py``), which it hands to pubsub itself. So the router's ``Broadcast``
replaces pubsub's notifee by ``KnownPeersOnly``, which passes on only the disconnect of a peer
pubsub knows. 0.8.1 has no option for it; the swap uses the network's public notifee API, and
relies on ``Pubsub`` registering exactly one ``PubsubNotifee`` when it is built. The upstream
change: docs/upstream/gossip_notifee.md.
"""

from typing import Any

from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.network.swarm import Swarm
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.pubsub_notifee import PubsubNotifee

from offchain.net.libp2p_patches.guard import (
    PatchError,
    require_method,
    require_pinned_version,
    require_type,
)

NAME = "gossip_notifee"


class KnownPeersOnly(INotifee):
    """Passes pubsub's disconnect events on, but never its connect events.

    Pubsub's own notifee opens a pubsub stream to every peer that connects; routers open
    theirs only to peers known to gossip (``Broadcast.add_peer``).
    """

    def __init__(self, inner: PubsubNotifee, pubsub: Pubsub) -> None:
        self._inner = inner
        self._pubsub = pubsub

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        """Ignore stream events."""

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        """Ignore stream events."""

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        """Do nothing: a connection alone does not make a peer a gossip peer."""

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        """Let pubsub forget a gossip peer that left (other peers it never knew)."""
        peer = conn.muxed_conn.peer_id
        if peer in self._pubsub.peers or any(
            peer in peers for peers in self._pubsub.peer_topics.values()
        ):
            await self._inner.disconnected(network, conn)

    async def listen(self, network: INetwork, multiaddr: Any) -> None:
        """Ignore listen events."""

    async def listen_close(self, network: INetwork, multiaddr: Any) -> None:
        """Ignore listen events."""


def check_library() -> None:
    """Raise ``PatchError`` unless pubsub's notifee and the network's notifee list are 0.8.1's."""
    require_pinned_version()
    require_method(PubsubNotifee, "connected", ("self", "network", "conn"))
    require_method(PubsubNotifee, "disconnected", ("self", "network", "conn"))
    require_method(Swarm, "register_notifee", ("self", "notifee"))
    require_method(Swarm, "remove_notifee", ("self", "notifee"))


def install(network: INetwork, pubsub: Pubsub) -> None:
    """Swap the notifee ``pubsub`` registered on ``network`` for one that opens no streams."""
    check_library()
    require_type(network, Swarm, "the host's network")
    notifees = [n for n in network.notifees if type(n) is PubsubNotifee]
    if len(notifees) != 1:
        raise PatchError(f"{NAME}: expected one pubsub notifee on the host, found {len(notifees)}")
    network.remove_notifee(notifees[0])
    network.register_notifee(KnownPeersOnly(notifees[0], pubsub))


def verify(network: INetwork) -> None:
    """Raise ``PatchError`` unless ``network`` has our notifee and none of pubsub's."""
    kinds = [type(n) for n in network.notifees]  # type: ignore[attr-defined]
    if PubsubNotifee in kinds or kinds.count(KnownPeersOnly) != 1:
        raise PatchError(f"{NAME}: the network's notifees are {[k.__name__ for k in kinds]}")
