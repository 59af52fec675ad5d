"""Network-wide broadcast for routers: gossipsub with a 1 s heartbeat and limits for our traffic.

Routers subscribe to every topic, so gossipsub relays each message across the router mesh to
whoever else subscribes (validators take the records topic). py-libp2p's defaults do not fit:
its heartbeat is 120 s and it drops more than 10 messages a second per peer and topic, while
a router publishes one record per answered request.
"""

import logging
from collections import Counter
from typing import Any

import trio
from libp2p.abc import IHost
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service.context import background_trio_service

from offchain.net import protocols
from offchain.net.framing import FrameError, MsgType, decode_frame
from offchain.net.metrics import AgentMetrics

logger = logging.getLogger(__name__)

HEARTBEAT_S = 1
# Per peer and topic: a busy router relays thousands of records a second.
MAX_MESSAGES_PER_TOPIC_PER_S = 5_000.0
MAX_GOSSIP_BYTES = 64 * 1_024
# Every gossiped message is one of our frames, of one of these types.
GOSSIP_TYPES = frozenset({MsgType.RECORD})


class Broadcast:
    """A router's gossipsub: subscribed to every EMC topic, counting what it sees."""

    def __init__(self, host: IHost, metrics: AgentMetrics | None = None) -> None:
        self.gossipsub = GossipSub(
            protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=6,
            degree_low=4,
            degree_high=12,
            heartbeat_interval=HEARTBEAT_S,
            max_messages_per_topic_per_second=MAX_MESSAGES_PER_TOPIC_PER_S,
        )
        self.pubsub = Pubsub(host, self.gossipsub, strict_signing=True)
        self.received: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.ready = trio.Event()
        self.metrics = metrics

    async def run(self) -> None:
        """Run gossipsub and read every topic until cancelled."""
        async with background_trio_service(self.pubsub), background_trio_service(self.gossipsub):
            await self.pubsub.wait_until_ready()
            async with trio.open_nursery() as nursery:
                for topic in protocols.ALL_TOPICS:
                    subscription = await self.pubsub.subscribe(topic)
                    nursery.start_soon(self._drain, topic, subscription)
                self.ready.set()

    async def _drain(self, topic: str, subscription: Any) -> None:
        async for message in subscription:
            data = bytes(message.data)
            if len(data) > MAX_GOSSIP_BYTES:
                self.dropped[topic] += 1
                logger.warning(
                    "gossip on %s dropped: reason=oversized (%d bytes)", topic, len(data)
                )
                continue
            try:
                decode_frame(data, GOSSIP_TYPES)
            except FrameError as exc:
                self._count(topic, "dropped")
                logger.warning("gossip on %s dropped: reason=%s (%s)", topic, exc.reason, exc)
                continue
            self._count(topic, "received")

    def _count(self, topic: str, outcome: str) -> None:
        (self.received if outcome == "received" else self.dropped)[topic] += 1
        if self.metrics is not None:
            self.metrics.gossip.labels(topic=topic, outcome=outcome).inc()

    async def publish(self, topic: str, frame: bytes) -> None:
        """Publish one frame on ``topic`` (gossipsub signs it with the host's key)."""
        if topic not in protocols.ALL_TOPICS:
            raise ValueError(f"unknown topic {topic!r}")
        if len(frame) > MAX_GOSSIP_BYTES:
            raise ValueError("gossip message too large")
        await self.pubsub.publish(topic, frame)
        if self.metrics is not None:
            self.metrics.gossip.labels(topic=topic, outcome="published").inc()
