"""A router's mesh links: one stream each way with every neighbour router, and forwarding.

Each end of a mesh link first presents its signed summary, whose endorsed binding ties its
peer id to a staked router address (``_admit``); then each pings the other and sends its own
summary every ``summary_interval_s``, and floods the fresh summaries it takes from one
neighbour to the others. What the summaries say is the mesh view (``mesh.MeshState``), from
which the planner picks the next hop of a request no local node can take; ``forward`` sends
it there on a session of the invocation protocol.
"""

import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import replace

import multiaddr
import trio
from libp2p.abc import IHost, INetStream
from libp2p.crypto.keys import KeyPair
from libp2p.peer.peerinfo import info_from_p2p_addr

from offchain.chain.identity import (
    BindingError,
    decode_endorsed_binding,
    encode_endorsed_binding,
    make_endorsed_binding,
)
from offchain.crypto.keys import Keypair
from offchain.net.boundary import StreamGuard
from offchain.net.framing import FrameReader, receive
from offchain.net.host import forget_failed_dials
from offchain.net.session import SessionPool
from offchain.net.streams import NET_ERRORS, peer_id, remote_peer, reset_quietly, send
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.frames import FrameError
from offchain.protocol.roles import ROLE_ROUTER
from offchain.protocol.wire import (
    MAX_PEERS_IN_SUMMARY,
    Ping,
    Pong,
    Request,
    Response,
    SignedSummary,
)
from offchain.routers import mesh as meshlib
from offchain.routers import planner, signing
from offchain.routers import table as tablelib
from offchain.routers.config import RouterConfig
from offchain.routers.gossip import Broadcast
from offchain.routers.links import Stake, drop_stream, note_ping
from offchain.runtime.backoff import Backoff
from offchain.runtime.metrics import AgentMetrics

logger = logging.getLogger(__name__)

MESH_BACKOFF_INITIAL_S = 0.5
MESH_BACKOFF_MAX_S = 10.0
# Renew the mesh identity binding when it has less than this left.
BINDING_RENEW_S = 24 * 3_600
# Summaries waiting to be relayed on one mesh link at most; beyond it they are dropped, counted.
OUTBOX = 64
# A dial and its first stream to a neighbour take at most this long.
DIAL_TIMEOUT_S = 10.0
# Hops a forwarded answer reports at most.
MAX_REPORTED_HOPS = 9


class MeshLinks:
    """Holds the mesh links with neighbour routers, the mesh view, and the conduct record.

    ``keep`` dials a configured neighbour and keeps the link up; ``handle`` serves a link a
    neighbour opens; ``forward`` sends a request to a neighbour. ``mesh`` and ``conduct`` are
    immutable, replaced at each change.
    """

    def __init__(
        self,
        host: IHost,
        config: RouterConfig,
        guard: StreamGuard,
        metrics: AgentMetrics,
        stake: Stake,
        rng: random.Random,
        *,
        key_pair: KeyPair,
        eth: Keypair,
        table: Callable[[], tablelib.RoutingTable],
        in_flight: Callable[[], int],
        broadcast: Broadcast | None,
    ) -> None:
        """Link with neighbour routers as the router ``host``.

        ``table`` returns the routing table our summaries describe; ``in_flight`` the load our
        pongs report; ``broadcast`` (if gossip is on) admits linked neighbours to gossip.
        """
        self.host = host
        self.config = config
        self.guard = guard
        self.metrics = metrics
        self.stake = stake
        self.rng = rng
        self.key_pair = key_pair
        self.eth = eth
        self.table = table
        self.in_flight = in_flight
        self.broadcast = broadcast
        self.me = host.get_id().to_string()
        self.is_router = stake.check_for(ROLE_ROUTER)
        self.mesh = meshlib.MeshState(self.me)
        # Evidence against mesh neighbours, and those cut off for it (mesh.Conduct).
        self.conduct = meshlib.Conduct()
        # Sessions of the invocation protocol to neighbours, for forwarded requests.
        self.sessions = SessionPool(host, protocols.INVOKE)
        # Mesh links per neighbour peer id (one each way at most).
        self.linked: dict[str, int] = {}
        # Per mesh link: the neighbour's peer id, and its queue of summaries to relay.
        self._outboxes: dict[int, tuple[str, trio.MemorySendChannel[SignedSummary]]] = {}
        # Per mesh link: the neighbour's peer id, its staked address, and the link's scope.
        self._scopes: dict[int, tuple[str, str, trio.CancelScope]] = {}
        self._link_ids = itertools.count(1)
        self._nonces = itertools.count(1)
        # Sequence numbers start at the wall clock in ms, so a restarted router's summaries
        # are newer than those it sent before (receivers refuse older ones as replays).
        self._summary_seq = itertools.count(time.time_ns() // 1_000_000)
        self._binding = b""
        self._binding_expiry = 0
        self._bindings = signing.BindingCache()
        self._own_signed: tuple[float, SignedSummary] | None = None

    # ------------------------------------------------------------------ links

    async def keep(self, addr: str) -> None:
        """Dial the neighbour at ``addr`` and keep a link to it, redialling with backoff."""
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        peer = info.peer_id.to_string()
        backoff = Backoff(MESH_BACKOFF_INITIAL_S, MESH_BACKOFF_MAX_S, self.rng)
        while True:
            banned_for = max(
                meshlib.cool_down_left(self.conduct, peer, trio.current_time()),
                self.guard.banned_for(peer),
            )
            if banned_for > 0:
                logger.info(
                    "mesh link to router %s waits %.1f s: cut off for misbehaviour",
                    peer,
                    banned_for,
                )
                await trio.sleep(banned_for)
                continue
            try:
                with trio.fail_after(DIAL_TIMEOUT_S):
                    forget_failed_dials(self.host, info.peer_id)  # our backoff paces redials
                    await self.host.connect(info)
                    stream = await self.host.new_stream(info.peer_id, [protocols.MESH])
            except (trio.TooSlowError, *NET_ERRORS) as exc:
                logger.info("mesh link to router %s failed: %s", peer, type(exc).__name__)
            else:
                # The link we opened has no handler around it: the boundary is here.
                with self.guard.contain(peer, "mesh") as outcome:
                    if await self._link(stream, peer, "to"):
                        backoff.reset()  # a refused link backs off further each time
                if outcome.failed:
                    await reset_quietly(stream)
            await backoff.wait()

    async def handle(self, stream: INetStream) -> None:
        """Serve the mesh link a neighbour opened."""
        await self._link(stream, remote_peer(stream), "from")

    async def _link(self, stream: INetStream, peer: str, direction: str) -> bool:
        """Run one mesh link with ``peer`` if it is a staked router; return whether it was.

        ``direction`` is "to" (we dialled) or "from" (it did).
        """
        reader = FrameReader(stream)
        address = await self._admit(stream, reader, peer, direction == "to")
        if address is None:
            await reset_quietly(stream)
            return False
        link = next(self._link_ids)
        outbox_send, outbox_recv = trio.open_memory_channel[SignedSummary](OUTBOX)
        self._outboxes[link] = (peer, outbox_send)
        self.linked[peer] = self.linked.get(peer, 0) + 1
        self._count()
        self.metrics.mesh_links.labels(outcome="admitted").inc()
        logger.info("mesh link %s router %s up (staked router %s)", direction, peer, address)
        if self.broadcast is not None:
            # Mesh routers gossip with each other; compute nodes and callers never do.
            self.broadcast.admit(peer_id(peer), address)
        lock = trio.Lock()
        sent: dict[int, float] = {}
        # Tracked by the chain view while linked: see ``drop_address``.
        with self.stake.tracking(address, ROLE_ROUTER):
            try:
                with trio.CancelScope() as scope:
                    self._scopes[link] = (peer, address, scope)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._write, stream, lock, sent)
                        nursery.start_soon(self._write_relayed, stream, lock, outbox_recv)
                        await self._read(stream, reader, peer, address, lock, sent)
                        nursery.cancel_scope.cancel()
            finally:
                del self._outboxes[link]
                del self._scopes[link]
                self.linked[peer] -= 1
                if self.linked[peer] == 0:
                    del self.linked[peer]
                    self._count()
                    self.mesh = meshlib.forget_router(self.mesh, peer)
                    if self.broadcast is not None:
                        self.broadcast.revoke(peer_id(peer))
                    logger.info("mesh link with router %s down", peer)
                await reset_quietly(stream)
        return True

    def _count(self) -> None:
        if self.metrics.mesh_peers is not None:
            self.metrics.mesh_peers.set(len(self.linked))

    async def _admit(
        self, stream: INetStream, reader: FrameReader, peer: str, dialled: bool
    ) -> str | None:
        """Exchange signed summaries with ``peer``; return its staked router address.

        Each end's first frame is its own signed summary, whose endorsed binding ties the peer
        id (authenticated by Noise) to an Ethereum address. The dialling end presents first, so
        a listener tells nothing to a peer that is not a staked router. Returns None, logged and
        counted, when the peer is cooling down after being cut off, sends nothing valid in
        time, or is not bound to a staked router.
        """
        now = trio.current_time()
        banned_for = meshlib.cool_down_left(self.conduct, peer, now)
        if banned_for > 0:
            self._refuse(peer, "mesh-cooling-down", f"peer id cut off, {banned_for:.1f} s left")
            return None
        try:
            if dialled:
                await send(stream, self.own_summary())
            with trio.fail_after(self.config.hello_timeout_s):
                signed = await receive(reader, SignedSummary)
            assert isinstance(signed, SignedSummary)
            claimed = _claimed_address(signed.binding)
            if self.stake.view is not None and claimed:
                await self.stake.settle(claimed, ROLE_ROUTER)
            summary, address = signing.verify_neighbour(
                signed, peer, self._bindings, time.time(), is_router=self.is_router
            )
            banned_for = meshlib.cool_down_left(self.conduct, address, trio.current_time())
            if banned_for > 0:
                self._refuse(
                    peer,
                    "mesh-cooling-down",
                    f"address {address} cut off, {banned_for:.1f} s left",
                )
                return None
            if not dialled:
                await send(stream, self.own_summary())
        except trio.TooSlowError:
            self._refuse(peer, "timeout", "no signed summary in time")
            return None
        except FrameError as exc:
            self._refuse(peer, exc.reason, str(exc), exc.reason != "truncated")
            return None
        except signing.SummaryRejected as exc:
            self._refuse(peer, exc.reason, exc.detail, meshlib.is_admission_evidence(exc.reason))
            return None
        except NET_ERRORS as exc:
            logger.info("mesh link with router %s failed: %s", peer, type(exc).__name__)
            return None
        if meshlib.is_newer(self.mesh, summary):
            self.mesh = meshlib.accept_summary(self.mesh, summary, trio.current_time())
            self._relay(signed, summary.router, peer)
        return address

    def _refuse(self, peer: str, reason: str, detail: str, evidence: bool = False) -> None:
        """Refuse a mesh link; ``evidence`` when the refusal counts against the peer."""
        if self.guard.should_log():
            logger.warning("refused mesh link with router %s: reason=%s (%s)", peer, reason, detail)
        self.metrics.errors.labels(reason=reason).inc()
        self.metrics.mesh_links.labels(outcome="refused").inc()
        self.guard.reject(peer, "mesh", reason, detail, evidence, log=False)

    # ------------------------------------------------------------------ our summary

    def _mesh_binding(self) -> bytes:
        """Return our endorsed binding (Ethereum key and libp2p key), renewed before expiry."""
        if self._binding_expiry - time.time() < BINDING_RENEW_S:
            endorsed = make_endorsed_binding(self.eth, self.key_pair.private_key, self.me)
            self._binding = encode_endorsed_binding(endorsed)
            self._binding_expiry = endorsed.binding.expiry
        return self._binding

    def own_summary(self) -> SignedSummary:
        """Return our signed summary; mesh links made within half an interval share one."""
        now = trio.current_time()
        if self._own_signed is not None:
            made_at, signed = self._own_signed
            if now - made_at < self.config.summary_interval_s / 2:
                return signed
        summary = meshlib.make_summary(
            self.me,
            next(self._summary_seq),
            self.mesh.links,
            tablelib.best_expected_by_workload(self.table(), MAX_PEERS_IN_SUMMARY),
        )
        signed = signing.sign_summary(summary, self.eth, self._mesh_binding())
        self._own_signed = (now, signed)
        return signed

    # ------------------------------------------------------------------ one link's traffic

    async def _write(self, stream: INetStream, lock: trio.Lock, sent: dict[int, float]) -> None:
        """Ping the neighbour and send it our summary, every summary interval."""
        while True:
            nonce = next(self._nonces)
            note_ping(sent, nonce, trio.current_time())
            try:
                async with lock:
                    await send(stream, Ping(nonce))
                    await send(stream, self.own_summary())
            except NET_ERRORS:
                return
            await trio.sleep(self.config.summary_interval_s)

    async def _write_relayed(
        self,
        stream: INetStream,
        lock: trio.Lock,
        outbox: trio.MemoryReceiveChannel[SignedSummary],
    ) -> None:
        """Send the neighbour the summaries other links took (``_relay``)."""
        async for summary in outbox:
            try:
                async with lock:
                    await send(stream, summary)
            except NET_ERRORS:
                return

    async def _read(
        self,
        stream: INetStream,
        reader: FrameReader,
        peer: str,
        address: str,
        lock: trio.Lock,
        sent: dict[int, float],
    ) -> None:
        """Take the neighbour's pings, pongs and summaries until the link ends."""
        silence = 3 * self.config.summary_interval_s + 5
        allowance = meshlib.Allowance(trio.current_time())
        while True:
            try:
                with trio.fail_after(silence):
                    message = await receive(reader, Ping, Pong, SignedSummary)
            except trio.TooSlowError:
                drop_stream(self.guard, self.metrics, peer, "mesh", "timeout", "router silent")
                return
            except FrameError as exc:
                if exc.reason != "truncated":
                    drop_stream(self.guard, self.metrics, peer, "mesh", exc.reason, str(exc))
                return
            now = trio.current_time()
            rate = meshlib.flood_rate(
                self.config.mesh_rate_per_s,
                len(self.mesh.summaries),
                self.config.summary_interval_s,
            )
            allowance, verdict = meshlib.allow(allowance, rate, now)
            if verdict != meshlib.READ:
                self.metrics.errors.labels(reason=meshlib.MESH_FLOOD).inc()
                if verdict == meshlib.DROP_AS_EVIDENCE:
                    logger.warning(
                        "mesh neighbour %s sends over %.0f messages/s: dropping the excess",
                        peer,
                        rate,
                    )
                    self.conduct, cut = meshlib.record_refusal(
                        self.conduct, peer, address, meshlib.MESH_FLOOD, now
                    )
                    if cut:
                        self._cut_off(peer, address, meshlib.MESH_FLOOD)
                        return
                continue
            if isinstance(message, Ping):
                try:
                    async with lock:
                        await send(stream, Pong(message.nonce, self.in_flight()))
                except NET_ERRORS:
                    return
            elif isinstance(message, Pong):
                started = sent.pop(message.nonce, None)
                # A pong read on a link being closed (its peer just cut off) measures nothing.
                if started is not None and not meshlib.cool_down_left(self.conduct, peer, now):
                    self.mesh = meshlib.set_link(self.mesh, peer, (now - started) * 1_000)
            elif isinstance(message, SignedSummary):
                if not self._take_summary(message, peer, address, now):
                    return

    def _take_summary(self, signed: SignedSummary, peer: str, address: str, now: float) -> bool:
        """Verify a summary from mesh neighbour ``peer``; apply and relay it if it is fresh.

        A summary that fails verification is dropped with its reason logged and counted; the
        mesh stream it came on stays up, unless the refusal is the neighbour's ``limit``-th
        piece of evidence within the window (``mesh.record_refusal``): then it is cut off.
        Returns False when it was, True while the link stays up.
        """
        try:
            summary = signing.open_summary(signed)
            if not meshlib.is_newer(self.mesh, summary):
                return True  # a duplicate via another link, our own, or a replay: nothing to check
            signing.verify_summary(
                signed, self._bindings, time.time(), summary, is_router=self.is_router
            )
        except signing.SummaryRejected as exc:
            logger.warning(
                "dropped summary relayed by %s: reason=%s (%s)", peer, exc.reason, exc.detail
            )
            self.metrics.errors.labels(reason=exc.reason).inc()
            self.conduct, cut = meshlib.record_refusal(self.conduct, peer, address, exc.reason, now)
            if cut:
                self._cut_off(peer, address, exc.reason)
            return not cut
        self.mesh = meshlib.accept_summary(self.mesh, summary, now)
        self._relay(signed, summary.router, peer)
        return True

    def _cut_off(self, peer: str, address: str, reason: str) -> None:
        """Close every mesh link with ``peer``, which is now banned for the cool-down.

        It leaves the mesh view at once, not when its links have wound down: no request may
        take it as next hop meanwhile.
        """
        logger.warning(
            "cut off mesh neighbour %s (%s): %d bad summaries within %.0f s, last reason=%s; "
            "refused for %.0f s",
            peer,
            address,
            self.conduct.policy.strikes,
            self.conduct.policy.window_s,
            reason,
            self.conduct.policy.cool_down_s,
        )
        self.mesh = meshlib.forget_router(self.mesh, peer)
        self.metrics.mesh_links.labels(outcome="cut-off").inc()
        for neighbour, _address, scope in list(self._scopes.values()):
            if neighbour == peer:
                scope.cancel()

    def drop_address(self, address: str) -> None:
        """Close the mesh links with neighbours bound to ``address``, no longer a staked router."""
        for neighbour, bound, scope in list(self._scopes.values()):
            if bound == address:
                logger.warning(
                    "dropped mesh link with router %s: %s is no longer a staked router",
                    neighbour,
                    address,
                )
                self.metrics.mesh_links.labels(outcome="unstaked").inc()
                scope.cancel()

    def _relay(self, signed: SignedSummary, origin: str, source: str) -> None:
        """Flood a fresh summary, as its origin signed it, to every other mesh link.

        Sequence numbers stop the echo.
        """
        for peer, outbox in list(self._outboxes.values()):
            if peer in (source, origin):
                continue
            try:
                outbox.send_nowait(signed)
            except trio.WouldBlock:
                self.metrics.errors.labels(reason="mesh-outbox-full").inc()

    # ------------------------------------------------------------------ forwarding

    async def forward(self, next_hop: str, request: Request) -> Response:
        """Send ``request`` on to the neighbour ``next_hop``; return its answer, one hop more."""
        onward = replace(request, path=(*request.path, self.me))
        try:
            with trio.fail_after(planner.timeout_s(request, self.config.request_timeout_s)):
                response = await self.sessions.request(peer_id(next_hop), onward)
        except (trio.TooSlowError, FrameError, *NET_ERRORS) as exc:
            logger.warning(
                "forward of %s to %s failed: %s",
                request.request_id.hex(),
                next_hop,
                type(exc).__name__,
            )
            self.metrics.errors.labels(reason="forward-failed").inc()
            return planner.refusal(
                request, planner.Refuse("forward-failed", f"router {next_hop} did not answer")
            )
        assert isinstance(response, Response)
        return replace(response, hops=min(response.hops + 1, MAX_REPORTED_HOPS))


def _claimed_address(binding: bytes) -> str:
    """Return the address an endorsed binding claims, unverified ("" if it is malformed)."""
    try:
        return decode_endorsed_binding(binding).binding.address
    except BindingError:
        return ""
