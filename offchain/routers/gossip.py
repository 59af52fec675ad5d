"""Network-wide broadcast for routers: gossipsub with a 1 s heartbeat and limits for our traffic.

Routers subscribe to every topic, so gossipsub relays each message across the router mesh to
whoever else subscribes (validators take the records topic). py-libp2p's defaults do not fit:
its heartbeat is 120 s and it drops more than 10 messages a second per peer and topic, while
a router publishes one record per answered request.

Who gossips: only peers bound to a staked router or validator address. py-libp2p's ``Pubsub``
opens a ``/meshsub`` stream to *every* peer that connects (its network notifee), which on a
router means every compute node and every caller; here pubsub runs only with admitted peers:
mesh routers (the agent admits a neighbour when its mesh link comes up, after checking its
signed summary's binding and stake) and peers that join over ``protocols.GOSSIP_JOIN``
(validators: a binding on their own connection, to an address staked as a validator or a
router). A ``/meshsub`` stream from anyone else is refused at the fault boundary, so an
unstaked peer can neither publish nor receive. A peer that loses its stake, or its mesh link,
is revoked: blacklisted in pubsub until admitted again.

Cheap before costly: the sender was checked when it was admitted; pubsub then checks the
message's signature; ``_validate`` checks the forwarder is still admitted, the origin is a
staked router or an admitted peer, the forwarder's rate and the size, and only then decodes.
Refused messages count against their forwarder at the boundary, which cuts off a peer that keeps
sending them.

Rate limits: gossipsub 0.8.1 checks its per-peer limit only when relaying, after the message
was already handed to local subscribers, and with a list scan per message (quadratic in the
limit). A topic validator runs before both, so the limit is enforced there, as a token bucket
per forwarding peer and topic; rejected messages are neither delivered nor relayed.
"""

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from libp2p.abc import IHost, INetStream
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service.context import background_trio_service

from offchain.net.boundary import StreamGuard
from offchain.net.framing import FrameReader, receive
from offchain.net.libp2p_patches import gossip_notifee
from offchain.net.streams import send
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.errors import InputRejected
from offchain.protocol.frames import FrameError, MsgType, decode_frame
from offchain.protocol.invocation import InvocationRecord, decode_record
from offchain.protocol.wire import Join, RecordBatch
from offchain.runtime.metrics import AgentMetrics, make_metrics

logger = logging.getLogger(__name__)

HEARTBEAT_S = 1
# Per forwarding peer and topic. A router relays every record of the network once, and one
# router answers about a hundred requests a second on the build machine (docs/network.md).
MAX_MESSAGES_PER_TOPIC_PER_S = 2_000.0
BURST = 4_000
MAX_GOSSIP_BYTES = 64 * 1_024
# Every gossiped message is one of our frames, of one of these types.
GOSSIP_TYPES = frozenset({MsgType.RECORDS})
# How long to keep trying to open our pubsub stream to a new gossip peer.
PEER_STREAM_TIMEOUT_S = 15.0
MESHSUB_PROTOCOLS = (PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID)
# A peer's gossipsub may open its stream before its join is answered (py-libp2p opens one on
# connect): the stream waits this long for the peer to be admitted.
ADMISSION_WAIT_S = 10.0
# ... if it has begun to join within this long; otherwise the stream is refused at once.
JOIN_GRACE_S = 1.0
# How long a join may take, each way.
JOIN_TIMEOUT_S = 5.0
# Admitted gossip peers at most (routers' mesh neighbours and validators).
MAX_GOSSIP_PEERS = 1_024


@dataclass
class _Admission:
    """A ``/meshsub`` stream waiting for its peer's join (``joining``) and verdict."""

    joining: trio.Event = field(default_factory=trio.Event)
    admitted: trio.Event = field(default_factory=trio.Event)


class NotAdmitted(InputRejected):
    """A gossip stream or message from a peer not bound to a staked router or validator."""

    reason = "gossip-not-admitted"


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; each message takes one."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last = now

    def take(self, now: float) -> bool:
        """Return whether a token was available (and take it)."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Broadcast:
    """A router's gossipsub: subscribed to every EMC topic, counting what it sees."""

    def __init__(
        self,
        host: IHost,
        metrics: AgentMetrics | None = None,
        rate_per_s: float = MAX_MESSAGES_PER_TOPIC_PER_S,
        burst: int = BURST,
        *,
        guard: StreamGuard | None = None,
        known_origin: Callable[[str], bool] = lambda _peer: False,
    ) -> None:
        """Gossip on ``host``; ``known_origin`` says whether a peer id is a staked router's.

        ``guard`` is the agent's fault boundary: it serves the ``/meshsub`` streams and holds
        refused messages against their forwarders (a fresh one when None).
        """
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("gossip rate and burst must be positive")
        self.host = host
        self.me = host.get_id()
        self._me_bytes = self.me.to_bytes()
        self.gossipsub = GossipSub(
            protocols=list(MESHSUB_PROTOCOLS),
            degree=6,
            degree_low=4,
            degree_high=12,
            heartbeat_interval=HEARTBEAT_S,
            # Enforced by ``_validate`` instead (see the module docstring).
            spam_protection_enabled=False,
        )
        self.pubsub = Pubsub(host, self.gossipsub, strict_signing=True)
        # Pubsub opens /meshsub to every peer that connects; ours, only to admitted peers.
        gossip_notifee.install(host.get_network(), self.pubsub)
        gossip_notifee.verify(host.get_network())
        self.guard = guard or StreamGuard(host, metrics or make_metrics("gossip"))
        self._known_origin = known_origin
        # Admitted peers and the staked address each is bound to; waiters for admission.
        self.admitted: dict[ID, str] = {}
        self._admission: dict[ID, _Admission] = {}
        for protocol in MESHSUB_PROTOCOLS:
            self.guard.set_handler(protocol, "gossip", self._handle_meshsub, 2)
        for topic in protocols.ALL_TOPICS:
            self.pubsub.set_topic_validator(topic, self._validate, is_async_validator=False)
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._buckets: dict[tuple[ID, str], TokenBucket] = {}
        self.received: Counter[str] = Counter()
        # Records carried by the messages received on the records topic (batches hold many).
        self.records_received = 0
        self.dropped: Counter[str] = Counter()
        self.ready = trio.Event()
        self.metrics = metrics
        self._new_peers_in, self._new_peers_out = trio.open_memory_channel[ID](256)

    # ------------------------------------------------------------------ peers

    def admit(self, peer: ID, address: str) -> bool:
        """Gossip with ``peer``, bound to the staked router or validator ``address``.

        Returns False (nothing changes) when ``MAX_GOSSIP_PEERS`` are admitted already.
        """
        if peer == self.me:
            return False
        if peer not in self.admitted and len(self.admitted) >= MAX_GOSSIP_PEERS:
            logger.warning(
                "gossip peer %s (%s) not admitted: %d admitted", peer, address, len(self.admitted)
            )
            return False
        self.admitted[peer] = address
        self.pubsub.remove_from_blacklist(peer)
        waiting = self._admission.pop(peer, None)
        if waiting is not None:
            waiting.joining.set()
            waiting.admitted.set()
        if peer not in self.pubsub.peers:
            try:
                self._new_peers_in.send_nowait(peer)
            except trio.WouldBlock:
                logger.warning("gossip peer %s not added: too many pending", peer)
        return True

    def revoke(self, peer: ID) -> None:
        """Stop gossiping with ``peer`` (its stake or its mesh link is gone)."""
        if self.admitted.pop(peer, None) is not None:
            logger.info("gossip with %s revoked", peer)
            if self.pubsub.manager.is_running:
                self.pubsub.add_to_blacklist(peer)

    def revoke_address(self, address: str) -> None:
        """Revoke every peer bound to ``address``."""
        for peer in [p for p, bound in self.admitted.items() if bound == address]:
            self.revoke(peer)

    def is_gossip_peer(self, peer: ID) -> bool:
        """Return whether our pubsub stream to ``peer`` is open."""
        return peer in self.pubsub.peers

    def expect(self, peer: ID) -> None:
        """Note that ``peer`` has sent a join: its ``/meshsub`` stream waits for the verdict."""
        waiting = self._waiting(peer)
        if waiting is not None:
            waiting.joining.set()

    def refuse(self, peer: ID) -> None:
        """Note that ``peer``'s join was refused: its waiting ``/meshsub`` stream is refused now."""
        waiting = self._admission.get(peer)
        if waiting is not None and peer not in self.admitted:
            waiting.joining.set()
            waiting.admitted.set()  # wakes the stream, which finds the peer not admitted

    def _waiting(self, peer: ID) -> "_Admission | None":
        waiting = self._admission.get(peer)
        if waiting is None and len(self._admission) < MAX_GOSSIP_PEERS:
            waiting = self._admission[peer] = _Admission()
        return waiting

    async def _handle_meshsub(self, stream: INetStream) -> None:
        """Read an admitted peer's gossip; refuse anyone else's stream.

        A peer that is joining (its gossipsub may open this stream before its join is
        answered) gets ``ADMISSION_WAIT_S``; one that has not begun to join within
        ``JOIN_GRACE_S`` is refused.
        """
        peer = stream.muxed_conn.peer_id
        if peer not in self.admitted:
            waiting = self._waiting(peer)
            if waiting is None:
                raise NotAdmitted(f"{peer} is not admitted to gossip")
            try:
                deadline = trio.current_time() + ADMISSION_WAIT_S
                with trio.move_on_after(JOIN_GRACE_S):
                    await waiting.joining.wait()
                if waiting.joining.is_set():
                    with trio.move_on_at(deadline):
                        await waiting.admitted.wait()
            finally:
                if self._admission.get(peer) is waiting and peer not in self.admitted:
                    del self._admission[peer]
            if peer not in self.admitted:
                raise NotAdmitted(f"{peer} is not bound to a staked router or validator")
        await self.pubsub.stream_handler(stream)

    async def _open_peer_streams(self) -> None:
        async with trio.open_nursery() as nursery:
            async for peer in self._new_peers_out:
                nursery.start_soon(self._open_peer_stream, peer)

    async def _open_peer_stream(self, peer: ID) -> None:
        if await self.pubsub.ensure_peer_stream(peer, PEER_STREAM_TIMEOUT_S):
            logger.info("gossip with %s up", peer)
        else:
            logger.info("gossip with %s not established", peer)

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Run gossipsub and read every topic until cancelled."""
        async with background_trio_service(self.pubsub), background_trio_service(self.gossipsub):
            await self.pubsub.wait_until_ready()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._open_peer_streams)
                for topic in protocols.ALL_TOPICS:
                    subscription = await self.pubsub.subscribe(topic)
                    nursery.start_soon(self._drain, topic, subscription)
                self.ready.set()

    def _validate(self, forwarder: ID, message: Any) -> bool:
        """Accept an admitted forwarder's message of a staked origin, within rate, if framed.

        Runs before pubsub delivers the message locally or relays it onward, after it checked
        the message's signature.
        """
        if forwarder == self.me:
            return True  # our own publish: framed by our encoder and size-checked in publish()
        if forwarder not in self.admitted:
            self._refuse(forwarder, "?", "gossip-not-admitted", "forwarder not admitted")
            return False
        topic = message.topicIDs[0] if len(message.topicIDs) == 1 else None
        if topic is None:
            self._refuse(forwarder, "?", "gossip-topics", f"{len(message.topicIDs)} topics")
            return False
        origin = _origin(message.from_id)
        if origin is None or not (
            origin == self.me or origin in self.admitted or self._known_origin(origin.to_string())
        ):
            self._refuse(forwarder, topic, "gossip-unknown-origin", "origin not a staked router")
            return False
        now = trio.current_time()
        key = (forwarder, topic)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 4_096:
                self._forget_idle_buckets(now)
            bucket = self._buckets[key] = TokenBucket(self.rate_per_s, self.burst, now)
        if not bucket.take(now):
            self._drop(topic, "rate-limit", f"from {forwarder}", warn=False)
            return False
        data = bytes(message.data)
        if len(data) > MAX_GOSSIP_BYTES:
            self._refuse(forwarder, topic, "oversized", f"{len(data)} bytes")
            return False
        try:
            decode_frame(data, GOSSIP_TYPES)
        except FrameError as exc:
            self._refuse(forwarder, topic, exc.reason, str(exc))
            return False
        return True

    def _refuse(self, forwarder: ID, topic: str, reason: str, detail: str) -> None:
        """Drop a message and hold it against the peer that forwarded it."""
        self._count(topic, "dropped")
        self.guard.reject(forwarder.to_string(), "gossip", reason, detail)

    def _forget_idle_buckets(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if now - b.last > self.burst / self.rate_per_s]
        for key in full:
            del self._buckets[key]

    def _drop(self, topic: str, reason: str, detail: str, warn: bool = True) -> None:
        self._count(topic, "dropped")
        if warn or self.dropped[topic] % 1_000 == 1:
            logger.warning("gossip on %s dropped: reason=%s (%s)", topic, reason, detail)

    async def _drain(self, topic: str, subscription: Any) -> None:
        async for message in subscription:
            self._count(topic, "received")
            # Records from elsewhere only: decoding our own batches again costs CPU per request.
            if topic == protocols.TOPIC_RECORDS and message.from_id != self._me_bytes:
                self.records_received += _record_count(bytes(message.data))

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


def _origin(from_id: bytes) -> ID | None:
    """Return the peer id a message names as its origin, None if it is not one."""
    try:
        return ID(bytes(from_id))
    except (ValueError, TypeError):
        return None


async def join_gossip(host: IHost, router: ID, binding: bytes) -> bytes:
    """Ask ``router`` to gossip with us, presenting ``binding``; return the router's binding.

    Open gossipsub with the router afterwards (or before: the router's ``/meshsub`` handler
    waits ``ADMISSION_WAIT_S`` for the join). Raises the network's errors, or ``FrameError``
    when the router refuses (it resets the stream).
    """
    stream = await host.new_stream(router, [protocols.GOSSIP_JOIN])
    try:
        await send(stream, Join(binding))
        with trio.fail_after(JOIN_TIMEOUT_S):
            answer = await receive(FrameReader(stream), Join)
        assert isinstance(answer, Join)
        return answer.binding
    finally:
        await stream.reset()


def _record_count(data: bytes) -> int:
    """Return how many records a (validated) records-topic message carries."""
    _msg_type, value = decode_frame(data, GOSSIP_TYPES)
    return len(value["records"])


def decode_records(data: bytes) -> list[InvocationRecord]:
    """Return the invocation records of one records-topic message, or raise ``InputRejected``.

    Each is decoded, not checked: a subscriber that settles them runs ``check_record``.
    """
    _msg_type, value = decode_frame(data, GOSSIP_TYPES)
    return [decode_record(item) for item in RecordBatch.from_map(value).records]
