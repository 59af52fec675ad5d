"""The subscriber side of the records topic: a validator's feed of the records routers gossip.

Routers gossip each countersigned ``InvocationRecord`` on ``TOPIC_RECORDS`` among staked peers
only (``gossip.py``). A validator, or the devnet settling as one, takes them as any staked
subscriber does: a host of its own connects to routers, joins their gossip over
``GOSSIP_JOIN`` with a binding of its peer id to its staked validator address (a router reads
that stake from the chain, or takes it from ``--staked-validator``), and subscribes to the
topic. ``record_feed`` runs that; ``RecordFeed.meshed`` waits until every router it joined has
it in its records mesh (from then on each record a router publishes reaches it), and
``RecordFeed.records`` yields the records as they arrive, decoded but not checked: whoever
settles them runs ``check_record``. A message that does not decode is logged and skipped.
Read the feed as it runs: pubsub holds 32 undelivered messages per topic and drops the rest.
"""

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import multiaddr
import trio
from libp2p.abc import IHost, ISubscriptionAPI
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service.context import background_trio_service

from offchain.chain.identity import encode_binding, make_binding
from offchain.crypto.keys import Keypair
from offchain.net.host import identity_from_seed, make_host
from offchain.net.limits import node_limits
from offchain.net.streams import close_all_connections
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.errors import InputRejected
from offchain.protocol.invocation import InvocationRecord
from offchain.routers.gossip import HEARTBEAT_S, MESHSUB_PROTOCOLS, decode_records, join_gossip

logger = logging.getLogger(__name__)

# How often ``meshed`` looks at the mesh: gossipsub grafts on its heartbeat and has no event.
MESH_POLL_S = HEARTBEAT_S / 10


class RecordFeed:
    """A running subscription to the records topic through the routers it joined."""

    def __init__(
        self, host: IHost, gossipsub: GossipSub, subscription: ISubscriptionAPI, routers: list[ID]
    ) -> None:
        self.host = host
        self.gossipsub = gossipsub
        self.subscription = subscription
        self.routers = routers
        self.malformed = 0

    def in_mesh(self) -> set[ID]:
        """Return the joined routers that are in this feed's records mesh now."""
        return set(self.routers) & set(self.gossipsub.mesh.get(protocols.TOPIC_RECORDS, ()))

    async def meshed(self, timeout_s: float) -> None:
        """Return once every joined router is in the records mesh; raise ``TimeoutError`` if not.

        A graft is symmetric: the router that grafted this feed, or accepted its graft, sends
        it every record it publishes from then on.
        """
        with trio.move_on_after(timeout_s):
            while len(self.in_mesh()) < len(self.routers):
                await trio.sleep(MESH_POLL_S)
        if len(self.in_mesh()) < len(self.routers):
            raise TimeoutError(
                f"{len(self.in_mesh())} of {len(self.routers)} routers in the records mesh "
                f"after {timeout_s} s"
            )

    async def records(self) -> AsyncIterator[InvocationRecord]:
        """Yield each record gossiped on the topic as it arrives (each message once)."""
        while True:
            message = await self.subscription.get()
            try:
                batch = decode_records(bytes(message.data))
            except InputRejected as exc:
                self.malformed += 1
                logger.warning("records message dropped: reason=%s (%s)", exc.reason, exc)
                continue
            for record in batch:
                yield record


@asynccontextmanager
async def record_feed(
    key: Keypair,
    router_addrs: Sequence[str],
    *,
    identity_seed: bytes | None = None,
    timeout_s: float = 10.0,
) -> AsyncIterator[RecordFeed]:
    """Run a feed of the records topic through the routers at ``router_addrs``.

    ``key`` is the staked validator key the feed binds its peer id to. Raises the network's
    errors, ``FrameError`` when a router refuses the join (the key is not staked there), or
    ``TooSlowError`` when the joins take over ``timeout_s``.
    """
    host = make_host(identity_from_seed(identity_seed), node_limits())
    gossipsub = GossipSub(
        list(MESHSUB_PROTOCOLS),
        degree=6,
        degree_low=4,
        degree_high=12,
        heartbeat_interval=HEARTBEAT_S,
        spam_protection_enabled=False,
    )
    pubsub = Pubsub(host, gossipsub, strict_signing=True)
    async with (
        host.run([]),
        background_trio_service(pubsub),
        background_trio_service(gossipsub),
    ):
        try:
            await pubsub.wait_until_ready()
            subscription = await pubsub.subscribe(protocols.TOPIC_RECORDS)
            binding = encode_binding(make_binding(key, host.get_id().to_string()))
            routers = []
            try:
                with trio.fail_after(timeout_s):
                    for addr in router_addrs:
                        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
                        await host.connect(info)
                        await join_gossip(host, info.peer_id, binding)
                        routers.append(info.peer_id)
            except Exception as exc:  # raised below, not wrapped in the host's nursery's group
                refused: Exception | None = exc
            else:
                refused = None
                yield RecordFeed(host, gossipsub, subscription, routers)
        finally:
            # Closed before pubsub stops: a router's stream arriving while pubsub's nursery
            # closes would raise out of the host ("Nursery is closed to new arrivals").
            await close_all_connections(host)
    if refused is not None:
        raise refused
