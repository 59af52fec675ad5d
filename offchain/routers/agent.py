"""The router agent: holds compute-node connections, routes requests, and meshes with routers.

Compute nodes dial in and open a link stream: hello, then load reports and pongs from the node
and pings from the router, and the router's requests and the node's answers on the same
stream, so nodes need no public port. Requests no local node can take go to another router
along the mesh's shortest path.
"""

import functools
import gc
import itertools
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import multiaddr
import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.peer.peerstore import PeerStoreError

from offchain.chain.identity import (
    BindingError,
    RoleCheck,
    classify_peer,
    decode_endorsed_binding,
    encode_binding,
    encode_endorsed_binding,
    make_binding,
    make_endorsed_binding,
    stake_check_for,
    static_role_check,
)
from offchain.crypto.hashing import keccak
from offchain.crypto.keys import generate_keypair
from offchain.net.boundary import StreamGuard
from offchain.net.conduct import ConductPolicy, PeerConduct
from offchain.net.framing import FrameReader, receive
from offchain.net.host import (
    forget_failed_dials,
    identity_from_seed,
    listen_addrs_of,
    make_host,
)
from offchain.net.limits import router_limits
from offchain.net.session import (
    ClientSession,
    ServeLimits,
    SessionEnded,
    SessionPool,
    SessionRefused,
    serve_session,
)
from offchain.net.source_gate import GatePolicy, SourceGate
from offchain.net.streams import (
    NET_ERRORS,
    close_quietly,
    peer_id,
    remote_peer,
    reset_quietly,
    send,
    shut_down,
)
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.frames import FrameError
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER, ROLE_VALIDATOR
from offchain.protocol.wire import (
    MAX_PEERS_IN_SUMMARY,
    Hello,
    Join,
    Load,
    Message,
    Ping,
    Pong,
    RecordBatch,
    Request,
    Response,
    RouteRecord,
    SignedSummary,
    encode,
)
from offchain.routers import mesh as meshlib
from offchain.routers import signing
from offchain.routers import table as tablelib
from offchain.routers.config import RouterConfig
from offchain.routers.gossip import Broadcast, TokenBucket
from offchain.runtime.backoff import Backoff
from offchain.runtime.gc_policy import ChurnCollector
from offchain.runtime.metrics import AgentMetrics, make_metrics, serve_metrics

if TYPE_CHECKING:
    from offchain.chain.stake_view import StakeView

logger = logging.getLogger(__name__)

# Errors after which the request is tried once more on another node.
RETRYABLE = frozenset({"busy", "unknown-workload", "node-failed", "timeout"})
MESH_BACKOFF_INITIAL_S = 0.5
MESH_BACKOFF_MAX_S = 10.0
# Records wait at most this long to share a gossip message with others.
RECORD_BATCH_S = 0.1
# Records held for gossip at most; beyond it they are dropped and counted.
RECORD_QUEUE = 4_096
# Renew the mesh identity binding when it has less than this left.
BINDING_RENEW_S = 24 * 3_600
# A new node or mesh neighbour waits at most this long for the chain view to read an address it
# has not seen (then it counts as unstaked until a read finds its stake). Kept under the hello
# timeout, which the other end of a mesh link applies to our answer.
STAKE_WAIT_S = 2.0
# How often the router asks whether a full garbage collection is due (gc_policy).
GC_CHECK_S = 5.0


def seed_bytes(hex_seed: str | None) -> bytes | None:
    """Return the 32 bytes of a 64-hex-digit seed, or None."""
    if hex_seed is None:
        return None
    data = bytes.fromhex(hex_seed.removeprefix("0x"))
    if len(data) != 32:
        raise ValueError("seeds are 32 bytes (64 hex digits)")
    return data


class _PeerStoreJanitor(INotifee):
    """Forgets peers that leave, so churn never fills (or evicts) the peer store."""

    def __init__(
        self, host: IHost, on_change: Callable[[], None], on_ended: Callable[[], None]
    ) -> None:
        self._host = host
        self._on_change = on_change
        self._on_ended = on_ended

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        """Ignore stream events."""

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        """Ignore stream events."""

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        """Update the connection gauge."""
        self._on_change()

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        """Drop a departed peer's peer-store entry once its last connection is gone."""
        self._on_change()
        self._on_ended()
        peer = conn.muxed_conn.peer_id
        if peer == self._host.get_id() or network.get_connections(peer):
            return
        try:
            self._host.get_peerstore().clear_peerdata(peer)
        except PeerStoreError:
            pass

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        """Ignore listen events."""

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        """Ignore listen events."""


class RouterAgent:
    """One router: a libp2p host, its routing table, and its view of the mesh."""

    def __init__(self, config: RouterConfig, metrics: AgentMetrics | None = None) -> None:
        self.config = config
        self.key_pair = identity_from_seed(seed_bytes(config.identity_seed))
        self.eth = generate_keypair(seed_bytes(config.eth_key_seed))
        # Sources that keep sending peers we cut off are refused at accept (net/source_gate.py).
        self.gate = (
            SourceGate(
                GatePolicy(cut_offs=config.source_cut_offs, cool_down_s=config.cool_down_s),
                on_refused=lambda _source: self.metrics.rejected.labels(
                    reason="source-refused"
                ).inc(),
            )
            if config.source_cut_offs
            else None
        )
        self.host = make_host(self.key_pair, router_limits(config.max_connections), self.gate)
        self.me = self.host.get_id().to_string()
        self.table = tablelib.RoutingTable()
        self.mesh = meshlib.MeshState(self.me)
        self.metrics = metrics or make_metrics("router")
        # Every stream handler runs behind it; it cuts off peers that keep sending bad input.
        self.guard = StreamGuard(
            self.host,
            self.metrics,
            PeerConduct(ConductPolicy(strikes=config.strikes, cool_down_s=config.cool_down_s)),
            gate=self.gate,
        )
        self.rng = random.Random()
        # Nodes' sessions are their own link streams, adopted as they join (``_serve_node``).
        self.node_sessions = SessionPool(self.host, None)
        self.router_sessions = SessionPool(self.host, protocols.INVOKE)
        self.in_flight = 0
        self._peer_in_flight: dict[str, int] = {}
        # Read at scrape time, and the common outcome's counter looked up once: each costs a
        # lock and a label lookup per request otherwise.
        self.metrics.in_flight.set_function(lambda: self.in_flight)
        self._answered_ok = self.metrics.requests.labels(outcome="ok")
        self.ready = trio.Event()
        self.metrics_port: int | None = None
        # Who is staked for which role: Staking.is_active through the chain view when a chain
        # is configured (the config's lists still count), else the config's lists alone.
        static = static_role_check(
            {
                ROLE_COMPUTE: config.staked,
                ROLE_ROUTER: config.staked_routers,
                ROLE_VALIDATOR: config.staked_validators,
            }
        )
        self.stake: StakeView | None = None
        self._roles: RoleCheck = static
        if config.chain_rpc is not None:
            # Imported here: web3 adds half a second to the start of routers that need none.
            from offchain.chain import stake_view

            # Reads the chain now: a wrong chain id or record is an error before we listen.
            reader = stake_view.connect_staking(
                config.chain_rpc, config.deployment, config.chain_id
            )
            self.stake = stake_view.StakeView(
                reader,
                static,
                refresh_s=config.stake_refresh_s,
                follow_s=config.stake_follow_s or None,
                max_tracked=config.stake_max_tracked,
                errors=self.metrics.errors,
            )
            self.stake.subscribe(self._stake_changed)
            self._roles = self.stake
        self._is_staked = stake_check_for(self._roles, ROLE_COMPUTE)
        self._is_router = stake_check_for(self._roles, ROLE_ROUTER)
        # Evidence against mesh neighbours, and those cut off for it (mesh.Conduct).
        self.conduct = meshlib.Conduct()
        # Full garbage collections after churn (gc_policy): what ended connections left behind.
        self.garbage = ChurnCollector(last_full=time.monotonic())
        self._controls: dict[str, object] = {}
        # Sequence numbers start at the wall clock in ms, so a restarted router's summaries
        # are newer than those it sent before (receivers refuse older ones as replays).
        self._summary_seq = itertools.count(time.time_ns() // 1_000_000)
        self._mesh_binding = b""
        self._mesh_binding_expiry = 0
        self._bindings = signing.BindingCache()
        self._own_signed: tuple[float, SignedSummary] | None = None
        self._mesh_sessions: dict[str, int] = {}
        self._mesh_outboxes: dict[int, tuple[str, trio.MemorySendChannel[SignedSummary]]] = {}
        # Per mesh session: the neighbour's peer id, its staked address, and the session's scope.
        self._mesh_scopes: dict[int, tuple[str, str, trio.CancelScope]] = {}
        self._session_ids = itertools.count(1)
        self._nonces = itertools.count(1)
        self.broadcast = (
            Broadcast(
                self.host,
                self.metrics,
                config.gossip_rate_per_s,
                config.gossip_burst,
                guard=self.guard,
                # A record's origin is a router whose signed summary we took (a staked router).
                known_origin=lambda peer: peer in self.mesh.summaries,
            )
            if config.gossip
            else None
        )
        # Records waiting for the next batch; a list, not a channel, so that answering a
        # request never wakes the publisher (it wakes every RECORD_BATCH_S instead).
        self._records: list[RouteRecord] = []

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: trio.Event) -> None:
        """Serve until ``stop`` is set."""
        # A node holds one link per router (two while one replaces another); a caller or a
        # router a few sessions; a neighbour one mesh link each way.
        guard = self.guard
        guard.set_handler(protocols.NODE_CONTROL, "control", self._handle_node_control, 2)
        guard.set_handler(protocols.INVOKE, "invoke", self._handle_invoke, 16)
        guard.set_handler(protocols.MESH, "mesh", self._handle_mesh, 2)
        if self.broadcast is not None:
            guard.set_handler(protocols.GOSSIP_JOIN, "join", self._handle_join, 2)
        network = self.host.get_network()
        network.register_notifee(
            _PeerStoreJanitor(self.host, self._count_connections, self.garbage.note_ended)
        )
        with trio.CancelScope() as teardown:
            async with self.host.run([multiaddr.Multiaddr(self.config.listen)]):
                async with self.node_sessions, self.router_sessions, trio.open_nursery() as nursery:
                    nursery.start_soon(self.guard.run)
                    if self.stake is not None:
                        nursery.start_soon(self.stake.run)
                    elif self.config.peers and not self.config.staked_routers:
                        logger.warning(
                            "no staked routers configured: every mesh link will be refused"
                        )
                    for addr in self.config.peers:
                        nursery.start_soon(self._keep_mesh_link, addr)
                    if self.broadcast is not None:
                        nursery.start_soon(self.broadcast.run)
                        nursery.start_soon(self._publish_records)
                    nursery.start_soon(self._collect_garbage)
                    if self.config.metrics_port is not None:
                        self.metrics_port = serve_metrics(
                            self.metrics, self.config.metrics_port, self.config.metrics_host
                        )
                    self._write_ready_file()
                    self.ready.set()
                    logger.info(
                        "router up at %s", " ".join(str(a) for a in listen_addrs_of(self.host))
                    )
                    await stop.wait()
                    logger.info("router stopping")
                    nursery.cancel_scope.cancel()
                await shut_down(self.host, teardown)

    def addrs(self) -> list[str]:
        """Return the router's dialable addresses, each ending in /p2p/<peer id>."""
        return [str(a) for a in listen_addrs_of(self.host)]

    def _write_ready_file(self) -> None:
        if self.config.ready_file is None:
            return
        path = Path(self.config.ready_file)
        tmp = path.with_suffix(".tmp")
        info = {
            "peer_id": self.me,
            "addrs": self.addrs(),
            "metrics_port": self.metrics_port,
            "pid": os.getpid(),
            "address": self.eth.address,
        }
        tmp.write_text(json.dumps(info))
        tmp.replace(path)

    def _count_connections(self) -> None:
        self.metrics.connections.set(len(self.host.get_network().get_connections()))

    def _count_mesh_peers(self) -> None:
        if self.metrics.mesh_peers is not None:
            self.metrics.mesh_peers.set(len(self._mesh_sessions))

    async def _collect_garbage(self) -> None:
        """Run a full collection when connections have ended or a while has passed.

        What ``gc_policy.ChurnCollector`` decides; the collection stalls the router, as the
        collector's own full collections would.
        """
        while True:
            await trio.sleep(GC_CHECK_S)
            held = len(self.host.get_network().get_connections())
            if not self.garbage.due(held, time.monotonic()):
                continue
            ended = self.garbage.ended
            started = time.perf_counter()
            found = gc.collect()
            took = time.perf_counter() - started
            self.garbage.collected(time.monotonic())
            if self.metrics.full_collections is not None:
                self.metrics.full_collections.observe(took)
            logger.debug(
                "full collection: %d objects freed in %.3f s (%d connections ended, %d held)",
                found,
                took,
                ended,
                held,
            )

    def _drop(self, peer: str, stream_kind: str, reason: str, detail: str) -> None:
        """Refuse ``peer``'s stream for ``reason`` at the boundary (logged, counted, held)."""
        if self.guard.should_log():
            logger.warning(
                "dropped %s stream from %s: reason=%s (%s)", stream_kind, peer, reason, detail
            )
        self.metrics.errors.labels(reason=reason).inc()
        self.guard.reject(peer, stream_kind, reason, detail, log=False)

    # ------------------------------------------------------------------ compute nodes

    async def _handle_node_control(self, stream: INetStream) -> None:
        peer = remote_peer(stream)
        reader = FrameReader(stream)
        try:
            with trio.fail_after(self.config.hello_timeout_s):
                hello = await receive(reader, Hello)
        except trio.TooSlowError:
            self._drop(peer, "control", "timeout", "no hello in time")
            await reset_quietly(stream)
            return
        except FrameError as exc:
            self._drop(peer, "control", exc.reason, str(exc))
            await reset_quietly(stream)
            return
        assert isinstance(hello, Hello)
        address, staked = classify_peer(hello.binding, peer, self._is_staked)
        if not address or self.stake is None:
            await self._serve_node(stream, reader, peer, hello, address, staked)
            return
        # The chain view keeps the address of a linked node tracked, so that a change of its
        # stake re-marks it (``_stake_changed``).
        self.stake.hold(address, ROLE_COMPUTE)
        try:
            if not staked:
                staked = await self._settle_stake(address, ROLE_COMPUTE)
            await self._serve_node(stream, reader, peer, hello, address, staked)
        finally:
            self.stake.release(address, ROLE_COMPUTE)

    async def _serve_node(
        self,
        stream: INetStream,
        reader: FrameReader,
        peer: str,
        hello: Hello,
        address: str,
        staked: bool,
    ) -> None:
        """Hold the node in the routing table, and its link as its session, while the link lives."""
        workloads = tablelib.admissible_workloads(self.table, hello.workloads, staked)
        if len(workloads) < len(set(hello.workloads)):
            logger.info(
                "node %s (unstaked) listed for %d of the %d workloads it declared",
                peer,
                len(workloads),
                len(set(hello.workloads)),
            )
            self.metrics.rejected.labels(reason="unstaked-workload-cap").inc()
        token = object()
        self._controls[peer] = token
        self.table = tablelib.add_node(
            self.table,
            tablelib.NodeEntry(
                peer_id=peer,
                workloads=workloads,
                e_power=hello.e_power,
                capacity=max(1, hello.capacity),
                staked=staked,
                address=address,
                queue_depth=hello.queue_depth,
            ),
        )
        self._count_nodes()
        logger.info(
            "node %s joined: workloads=%s staked=%s address=%s",
            peer,
            ",".join(hello.workloads),
            staked,
            address or "-",
        )
        sent: dict[int, float] = {}
        session = ClientSession(
            stream,
            reader,
            kinds=(Load, Pong),
            on_message=functools.partial(self._node_report, peer, sent),
            silence_s=lambda: 3 * self._ping_interval() * 1.2 + 2,
        )
        node_id = peer_id(peer)
        self.node_sessions.adopt(node_id, session)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ping_node, session, sent)
                end = await session.run()
                if end.reason == "timeout":
                    self._drop(peer, "control", "timeout", "node silent")
                elif end.reason not in ("gone", "closed"):
                    self._drop(peer, "control", end.reason, str(end))
                nursery.cancel_scope.cancel()
        finally:
            self.node_sessions.forget(node_id, session)
            if self._controls.get(peer) is token:
                del self._controls[peer]
                self.table = tablelib.remove_node(self.table, peer)
                self._count_nodes()
                logger.info("node %s left", peer)
            await reset_quietly(stream)

    def _count_nodes(self) -> None:
        self.metrics.nodes.set(len(self.table.nodes))
        if self.metrics.staked_nodes is not None:
            self.metrics.staked_nodes.set(sum(e.staked for e in self.table.nodes.values()))

    async def _settle_stake(self, address: str, role: int) -> bool:
        """Return whether ``address`` is staked for ``role``, giving the chain view a moment.

        Once per new node or mesh link, never per request: an address the view has not read
        yet would otherwise count as unstaked until a change re-marks it.
        """
        assert self.stake is not None
        with trio.move_on_after(min(STAKE_WAIT_S, self.config.hello_timeout_s / 2)):
            return await self.stake.settle(address, role)
        return self._roles(address, role)

    def _stake_changed(self, address: str, role: int, staked: bool) -> None:
        """Follow a change in the chain view: re-mark linked nodes, drop unstaked neighbours."""
        if role == ROLE_COMPUTE:
            # A scan of the table, once per change of one address's stake: rare.
            for entry in list(self.table.nodes.values()):
                if entry.address == address and entry.staked != staked:
                    self.table = tablelib.set_staked(self.table, entry.peer_id, staked)
                    logger.info(
                        "node %s staked=%s address=%s (stake changed on-chain)",
                        entry.peer_id,
                        staked,
                        address,
                    )
            self._count_nodes()
        elif role == ROLE_VALIDATOR and not staked:
            self._revoke_gossip(address)
        elif role == ROLE_ROUTER and not staked:
            self._revoke_gossip(address)
            for neighbour, bound, scope in list(self._mesh_scopes.values()):
                if bound == address:
                    logger.warning(
                        "dropped mesh link with router %s: %s is no longer a staked router",
                        neighbour,
                        address,
                    )
                    self.metrics.mesh_links.labels(outcome="unstaked").inc()
                    scope.cancel()

    def _revoke_gossip(self, address: str) -> None:
        """Stop gossiping with the peers bound to ``address`` unless it is still staked."""
        if self.broadcast is None:
            return
        if self._roles(address, ROLE_ROUTER) or self._roles(address, ROLE_VALIDATOR):
            return
        self.broadcast.revoke_address(address)

    async def _handle_join(self, stream: INetStream) -> None:
        """Admit a peer bound to a staked router or validator address to gossip.

        The peer presents its binding on its own connection; the answer is our own, sent only
        once the peer is admitted. Anyone else's stream is reset, and the refusal counted (held
        against the peer only for a malformed join: stake views change at different moments).
        """
        assert self.broadcast is not None
        peer = remote_peer(stream)
        admitted = False
        try:
            with trio.fail_after(self.config.hello_timeout_s):
                join = await receive(FrameReader(stream), Join)
            assert isinstance(join, Join)
            self.broadcast.expect(peer_id(peer))
            address, _staked = classify_peer(join.binding, peer, lambda _address: False)
            if not address:
                raise BindingError("no valid binding for this peer")
            if not await self._staked_for_gossip(address):
                self.guard.reject(
                    peer,
                    "join",
                    "gossip-not-staked",
                    f"{address} is no staked router or validator",
                    evidence=False,
                )
                await reset_quietly(stream)
                return
            if not self.broadcast.admit(peer_id(peer), address):
                self.guard.reject(peer, "join", "gossip-full", "no room", evidence=False)
                await reset_quietly(stream)
                return
            admitted = True
        finally:
            if not admitted:
                self.broadcast.refuse(peer_id(peer))
        logger.info("gossip peer %s admitted (staked %s)", peer, address)
        await send(stream, Join(encode_binding(make_binding(self.eth, self.me))))
        await close_quietly(stream)

    async def _staked_for_gossip(self, address: str) -> bool:
        """Return whether ``address`` is staked as a validator or a router (tracked while so)."""
        for role in (ROLE_VALIDATOR, ROLE_ROUTER):
            if self._roles(address, role):
                return True
            if self.stake is not None and await self._settle_stake(address, role):
                return True
        return False

    def _ping_interval(self) -> float:
        """Return the ping period for the node count now.

        The configured period, stretched so that all pings stay under ``max_pings_per_s`` (a
        router with thousands of idle nodes must not spend its CPU on pings), and never
        beyond ``max_ping_interval_s``.
        """
        spread = len(self.table.nodes) / self.config.max_pings_per_s
        return min(max(self.config.ping_interval_s, spread), self.config.max_ping_interval_s)

    async def _ping_node(self, session: ClientSession, sent: dict[int, float]) -> None:
        while True:
            await trio.sleep(self._ping_interval() * self.rng.uniform(0.8, 1.2))
            nonce = next(self._nonces)
            sent[nonce] = trio.current_time()
            if len(sent) > 8:
                sent.pop(min(sent))
            await session.send(Ping(nonce))
            if session.closed:
                return

    def _node_report(self, peer: str, sent: dict[int, float], message: Message) -> None:
        """Take a node's load report or pong, which come on its link between its answers."""
        if isinstance(message, Load):
            self.table = tablelib.report_load(self.table, peer, message.queue_depth)
        elif isinstance(message, Pong):
            started = sent.pop(message.nonce, None)
            if started is None:
                self.table = tablelib.report_load(self.table, peer, message.queue_depth)
            else:
                rtt_ms = (trio.current_time() - started) * 1_000
                self.table = tablelib.record_pong(self.table, peer, rtt_ms, message.queue_depth)

    # ------------------------------------------------------------------ requests

    async def _handle_invoke(self, stream: INetStream) -> None:
        """Answer the requests a caller or another router sends on its session, several at once."""
        peer = remote_peer(stream)
        limits = ServeLimits(
            first_timeout_s=self.config.read_timeout_s,
            frame_timeout_s=self.config.read_timeout_s,
            max_in_flight=self.config.max_in_flight,
        )

        async def admit(request: Request) -> Response:
            started = trio.current_time()
            response = await self._admit(request, peer)
            self.metrics.latency.observe(trio.current_time() - started)
            if response.ok:
                self._answered_ok.inc()
            else:
                self.metrics.requests.labels(outcome=response.error).inc()
            return response

        try:
            await serve_session(stream, admit, limits, self._busy)
        except SessionRefused as exc:
            self._drop(peer, "invoke", exc.reason, exc.detail)
            await reset_quietly(stream)

    def _busy(self, request: Request) -> Response:
        self.metrics.requests.labels(outcome="busy").inc()
        return _error(request, "busy", f"router at its limit of {self.in_flight} requests")

    async def _admit(self, request: Request, peer: str) -> Response:
        if request.path and request.path[-1] != peer:
            self.metrics.errors.labels(reason="bad-path").inc()
            return _error(request, "bad-path", "a forwarded request must name its sender last")
        if self.me in request.path:
            return _error(request, "loop", "request already passed through this router")
        if self.in_flight >= self.config.max_in_flight:
            return self._busy(request)
        # One peer's share of the router's in-flight work, whatever sessions it opens: a
        # flood from one caller leaves room for the others (a mesh neighbour forwards for
        # many, so it gets the whole).
        held = self._peer_in_flight.get(peer, 0)
        if held >= self._peer_limit(peer):
            return self._busy(request)
        self._peer_in_flight[peer] = held + 1
        self.in_flight += 1
        try:
            return await self.route(request)
        finally:
            self.in_flight -= 1
            left = self._peer_in_flight[peer] - 1
            if left:
                self._peer_in_flight[peer] = left
            else:
                del self._peer_in_flight[peer]

    def _peer_limit(self, peer: str) -> int:
        if peer in self._mesh_sessions:
            return self.config.max_in_flight
        return max(1, self.config.max_in_flight // 4)

    def _timeout_s(self, request: Request) -> float:
        return min(self.config.request_timeout_s, max(request.timeout_ms, 1) / 1_000)

    async def route(self, request: Request) -> Response:
        """Return the answer to ``request``: local node, retry once, else the mesh."""
        tried: list[str] = []
        reasons: list[str] = []
        for _attempt in range(2):
            node = tablelib.choose(
                self.table,
                request.workload,
                self.rng,
                trio.current_time(),
                request.timeout_ms,
                exclude=tried,
            )
            if node is None:
                break
            tried.append(node)
            response, reason = await self._call_node(node, request)
            if response is not None and (response.ok or response.error not in RETRYABLE):
                if response.ok:
                    self._record(request, response)
                return response
            reasons.append(f"{node[-8:]}:{reason}")
            if _attempt == 0:
                logger.info(
                    "request %s failed on node %s (%s); retrying elsewhere",
                    request.request_id.hex(),
                    node,
                    reason,
                )
        if tried:
            detail = ", ".join(reasons)
            return _error(
                request,
                "node-failed",
                f"{request.workload} failed on {len(tried)} node(s): {detail}",
            )
        route = meshlib.next_hop(self.mesh, request.workload, trio.current_time(), request.path)
        if route is not None:
            return await self._forward(route, request)
        if tablelib.serves(self.table, request.workload):
            return _error(request, "busy", f"every node serving {request.workload} is full")
        return _error(request, "no-node", f"no reachable node serves {request.workload}")

    async def _call_node(self, node: str, request: Request) -> tuple[Response | None, str]:
        started = trio.current_time()
        self.table = tablelib.start_task(self.table, node, started)
        ok = False
        try:
            with trio.fail_after(self._timeout_s(request)):
                response = await self.node_sessions.request(peer_id(node), request)
            ok = response.ok or response.error not in RETRYABLE
            if response.node != node:  # the router's own knowledge of who answered
                response = replace(response, node=node)
            return response, response.error or "ok"
        except trio.TooSlowError:
            logger.warning("node %s timed out on request %s", node, request.request_id.hex())
            self.metrics.errors.labels(reason="node-timeout").inc()
            return None, "timeout"
        except SessionEnded as exc:
            # The node's session ended under this request: it died, or sent a bad frame.
            logger.warning("node %s failed on request %s: %s", node, request.request_id.hex(), exc)
            self.metrics.errors.labels(reason="node-" + exc.reason).inc()
            return None, exc.reason
        except NET_ERRORS as exc:
            logger.warning(
                "node %s failed on request %s: %s",
                node,
                request.request_id.hex(),
                type(exc).__name__,
            )
            self.metrics.errors.labels(reason="node-gone").inc()
            return None, "gone"
        finally:
            service_ms = (trio.current_time() - started) * 1_000
            self.table = tablelib.finish_task(self.table, node, ok, service_ms)

    async def _forward(self, route: meshlib.Route, request: Request) -> Response:
        onward = replace(request, path=(*request.path, self.me))
        try:
            with trio.fail_after(self._timeout_s(request)):
                response = await self.router_sessions.request(peer_id(route.next_hop), onward)
        except (trio.TooSlowError, FrameError, *NET_ERRORS) as exc:
            logger.warning(
                "forward of %s to %s failed: %s",
                request.request_id.hex(),
                route.next_hop,
                type(exc).__name__,
            )
            self.metrics.errors.labels(reason="forward-failed").inc()
            return _error(request, "forward-failed", f"router {route.next_hop} did not answer")
        assert isinstance(response, Response)
        return replace(response, hops=min(response.hops + 1, 9))

    def _record(self, request: Request, response: Response) -> None:
        """Queue the gossip record of an answered request (dropped, and counted, when full)."""
        if self.broadcast is None:
            return
        record = RouteRecord(
            request.request_id,
            request.workload,
            response.node,
            self.me,
            keccak(response.output),
            len(request.path),
        )
        if len(self._records) >= RECORD_QUEUE:
            self.metrics.gossip.labels(topic=protocols.TOPIC_RECORDS, outcome="dropped").inc()
            return
        self._records.append(record)

    async def _publish_records(self) -> None:
        """Gossip answered requests' records in batches: one message and signature for many."""
        assert self.broadcast is not None
        await self.broadcast.ready.wait()
        while True:
            await trio.sleep(RECORD_BATCH_S)
            while self._records:
                batch = self._records[: RecordBatch.MAX_RECORDS]
                del self._records[: RecordBatch.MAX_RECORDS]
                await self._publish_batch(batch)

    async def _publish_batch(self, batch: list[RouteRecord]) -> None:
        assert self.broadcast is not None
        try:
            await self.broadcast.publish(protocols.TOPIC_RECORDS, encode(RecordBatch(tuple(batch))))
        except NET_ERRORS as exc:
            logger.warning("%d records not gossiped: %s", len(batch), exc)

    # ------------------------------------------------------------------ mesh

    async def _keep_mesh_link(self, addr: str) -> None:
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
                with trio.fail_after(10):
                    forget_failed_dials(self.host, info.peer_id)  # our backoff paces redials
                    await self.host.connect(info)
                    stream = await self.host.new_stream(info.peer_id, [protocols.MESH])
            except (trio.TooSlowError, *NET_ERRORS) as exc:
                logger.info("mesh link to router %s failed: %s", peer, type(exc).__name__)
            else:
                # The link we opened has no handler around it: the boundary is here.
                with self.guard.contain(peer, "mesh") as outcome:
                    if await self._mesh_session(stream, peer, "to"):
                        backoff.reset()  # a refused link backs off further each time
                if outcome.failed:
                    await reset_quietly(stream)
            await backoff.wait()

    async def _handle_mesh(self, stream: INetStream) -> None:
        await self._mesh_session(stream, remote_peer(stream), "from")

    async def _mesh_session(self, stream: INetStream, peer: str, direction: str) -> bool:
        """Run one mesh link with ``peer`` if it is a staked router; return whether it was.

        ``direction`` is "to" (we dialled) or "from" (it did).
        """
        reader = FrameReader(stream)
        address = await self._admit_neighbour(stream, reader, peer, direction == "to")
        if address is None:
            await reset_quietly(stream)
            return False
        if self.stake is not None:
            self.stake.hold(address, ROLE_ROUTER)  # tracked while linked: see _stake_changed
        session = next(self._session_ids)
        outbox_send, outbox_recv = trio.open_memory_channel[SignedSummary](64)
        self._mesh_outboxes[session] = (peer, outbox_send)
        self._mesh_sessions[peer] = self._mesh_sessions.get(peer, 0) + 1
        self._count_mesh_peers()
        self.metrics.mesh_links.labels(outcome="admitted").inc()
        logger.info("mesh link %s router %s up (staked router %s)", direction, peer, address)
        if self.broadcast is not None:
            # Mesh routers gossip with each other; compute nodes and callers never do.
            self.broadcast.admit(peer_id(peer), address)
        lock = trio.Lock()
        sent: dict[int, float] = {}
        try:
            with trio.CancelScope() as scope:
                self._mesh_scopes[session] = (peer, address, scope)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._mesh_writer, stream, lock, sent)
                    nursery.start_soon(self._mesh_relay, stream, lock, outbox_recv)
                    await self._mesh_reader(stream, reader, peer, address, lock, sent)
                    nursery.cancel_scope.cancel()
        finally:
            if self.stake is not None:
                self.stake.release(address, ROLE_ROUTER)
            del self._mesh_outboxes[session]
            del self._mesh_scopes[session]
            self._mesh_sessions[peer] -= 1
            if self._mesh_sessions[peer] == 0:
                del self._mesh_sessions[peer]
                self._count_mesh_peers()
                self.mesh = meshlib.forget_router(self.mesh, peer)
                if self.broadcast is not None:
                    self.broadcast.revoke(peer_id(peer))
                logger.info("mesh link with router %s down", peer)
            await reset_quietly(stream)
        return True

    async def _admit_neighbour(
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
            self._refuse_link(
                peer, "mesh-cooling-down", f"peer id cut off, {banned_for:.1f} s left"
            )
            return None
        try:
            if dialled:
                await send(stream, self._own_summary())
            with trio.fail_after(self.config.hello_timeout_s):
                signed = await receive(reader, SignedSummary)
            assert isinstance(signed, SignedSummary)
            claimed = _claimed_address(signed.binding)
            if self.stake is not None and claimed:
                await self._settle_stake(claimed, ROLE_ROUTER)
            summary, address = signing.verify_neighbour(
                signed, peer, self._bindings, time.time(), is_router=self._is_router
            )
            banned_for = meshlib.cool_down_left(self.conduct, address, trio.current_time())
            if banned_for > 0:
                self._refuse_link(
                    peer,
                    "mesh-cooling-down",
                    f"address {address} cut off, {banned_for:.1f} s left",
                )
                return None
            if not dialled:
                await send(stream, self._own_summary())
        except trio.TooSlowError:
            self._refuse_link(peer, "timeout", "no signed summary in time")
            return None
        except FrameError as exc:
            self._refuse_link(peer, exc.reason, str(exc), exc.reason != "truncated")
            return None
        except signing.SummaryRejected as exc:
            evidence = meshlib.is_evidence(exc.reason) or exc.reason == signing.NOT_OWN_SUMMARY
            self._refuse_link(peer, exc.reason, exc.detail, evidence)
            return None
        except NET_ERRORS as exc:
            logger.info("mesh link with router %s failed: %s", peer, type(exc).__name__)
            return None
        if meshlib.is_newer(self.mesh, summary):
            self.mesh = meshlib.accept_summary(self.mesh, summary, trio.current_time())
            self._relay(signed, summary.router, peer)
        return address

    def _refuse_link(self, peer: str, reason: str, detail: str, evidence: bool = False) -> None:
        """Refuse a mesh link; ``evidence`` when the refusal counts against the peer."""
        if self.guard.should_log():
            logger.warning("refused mesh link with router %s: reason=%s (%s)", peer, reason, detail)
        self.metrics.errors.labels(reason=reason).inc()
        self.metrics.mesh_links.labels(outcome="refused").inc()
        self.guard.reject(peer, "mesh", reason, detail, evidence, log=False)

    def _binding_for_mesh(self) -> bytes:
        """Return our endorsed binding (Ethereum key and libp2p key), renewed before expiry."""
        if self._mesh_binding_expiry - time.time() < BINDING_RENEW_S:
            endorsed = make_endorsed_binding(self.eth, self.key_pair.private_key, self.me)
            self._mesh_binding = encode_endorsed_binding(endorsed)
            self._mesh_binding_expiry = endorsed.binding.expiry
        return self._mesh_binding

    def _own_summary(self) -> SignedSummary:
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
            tablelib.best_expected_by_workload(self.table, MAX_PEERS_IN_SUMMARY),
        )
        signed = signing.sign_summary(summary, self.eth, self._binding_for_mesh())
        self._own_signed = (now, signed)
        return signed

    async def _mesh_writer(
        self, stream: INetStream, lock: trio.Lock, sent: dict[int, float]
    ) -> None:
        while True:
            nonce = next(self._nonces)
            sent[nonce] = trio.current_time()
            if len(sent) > 8:
                sent.pop(min(sent))
            try:
                async with lock:
                    await send(stream, Ping(nonce))
                    await send(stream, self._own_summary())
            except NET_ERRORS:
                return
            await trio.sleep(self.config.summary_interval_s)

    async def _mesh_relay(
        self,
        stream: INetStream,
        lock: trio.Lock,
        outbox: trio.MemoryReceiveChannel[SignedSummary],
    ) -> None:
        async for summary in outbox:
            try:
                async with lock:
                    await send(stream, summary)
            except NET_ERRORS:
                return

    async def _mesh_reader(
        self,
        stream: INetStream,
        reader: FrameReader,
        peer: str,
        address: str,
        lock: trio.Lock,
        sent: dict[int, float],
    ) -> None:
        silence = 3 * self.config.summary_interval_s + 5
        allowance = TokenBucket(1.0, 1, trio.current_time())
        allowance.tokens = math.inf  # full to start with, capped at the burst on the first take
        flood_noted = -math.inf
        while True:
            try:
                with trio.fail_after(silence):
                    message = await receive(reader, Ping, Pong, SignedSummary)
            except trio.TooSlowError:
                self._drop(peer, "mesh", "timeout", "router silent")
                return
            except FrameError as exc:
                if exc.reason != "truncated":
                    self._drop(peer, "mesh", exc.reason, str(exc))
                return
            now = trio.current_time()
            allowance.rate = meshlib.flood_rate(
                self.config.mesh_rate_per_s,
                len(self.mesh.summaries),
                self.config.summary_interval_s,
            )
            allowance.burst = int(2 * allowance.rate)
            if not allowance.take(now):
                # Dropped unread; each second of flooding is one piece of evidence.
                self.metrics.errors.labels(reason=meshlib.MESH_FLOOD).inc()
                if now - flood_noted >= 1.0:
                    flood_noted = now
                    logger.warning(
                        "mesh neighbour %s sends over %.0f messages/s: dropping the excess",
                        peer,
                        allowance.rate,
                    )
                    self.conduct, cut = meshlib.record_refusal(
                        self.conduct, peer, address, meshlib.MESH_FLOOD, now
                    )
                    if cut:
                        self._cut_off(peer, address, meshlib.MESH_FLOOD)
                continue
            if isinstance(message, Ping):
                try:
                    async with lock:
                        await send(stream, Pong(message.nonce, self.in_flight))
                except NET_ERRORS:
                    return
            elif isinstance(message, Pong):
                started = sent.pop(message.nonce, None)
                if started is not None:
                    self.mesh = meshlib.set_link(self.mesh, peer, (now - started) * 1_000)
            elif isinstance(message, SignedSummary):
                self._take_summary(message, peer, address, now)

    def _take_summary(self, signed: SignedSummary, peer: str, address: str, now: float) -> None:
        """Verify a summary from mesh neighbour ``peer``; apply and relay it if it is fresh.

        A summary that fails verification is dropped with its reason logged and counted; the
        mesh stream it came on stays up, unless the refusal is the neighbour's ``limit``-th
        piece of evidence within the window (``mesh.record_refusal``): then it is cut off.
        """
        try:
            summary = signing.open_summary(signed)
            if not meshlib.is_newer(self.mesh, summary):
                return  # a duplicate via another link, our own, or a replay: nothing to verify
            signing.verify_summary(
                signed, self._bindings, time.time(), summary, is_router=self._is_router
            )
        except signing.SummaryRejected as exc:
            logger.warning(
                "dropped summary relayed by %s: reason=%s (%s)", peer, exc.reason, exc.detail
            )
            self.metrics.errors.labels(reason=exc.reason).inc()
            self.conduct, cut = meshlib.record_refusal(self.conduct, peer, address, exc.reason, now)
            if cut:
                self._cut_off(peer, address, exc.reason)
            return
        self.mesh = meshlib.accept_summary(self.mesh, summary, now)
        self._relay(signed, summary.router, peer)

    def _cut_off(self, peer: str, address: str, reason: str) -> None:
        """Close every mesh link with ``peer``, which is now banned for the cool-down."""
        logger.warning(
            "cut off mesh neighbour %s (%s): %d bad summaries within %.0f s, last reason=%s; "
            "refused for %.0f s",
            peer,
            address,
            self.conduct.limit,
            self.conduct.window_s,
            reason,
            self.conduct.cool_down_s,
        )
        self.metrics.mesh_links.labels(outcome="cut-off").inc()
        for neighbour, _address, scope in list(self._mesh_scopes.values()):
            if neighbour == peer:
                scope.cancel()

    def _relay(self, signed: SignedSummary, origin: str, source: str) -> None:
        """Flood a fresh summary, as its origin signed it, to every other mesh link.

        Sequence numbers stop the echo.
        """
        for peer, outbox in list(self._mesh_outboxes.values()):
            if peer in (source, origin):
                continue
            try:
                outbox.send_nowait(signed)
            except trio.WouldBlock:
                self.metrics.errors.labels(reason="mesh-outbox-full").inc()


def _claimed_address(binding: bytes) -> str:
    """Return the address an endorsed binding claims, unverified ("" if it is malformed)."""
    try:
        return decode_endorsed_binding(binding).binding.address
    except BindingError:
        return ""


def _error(request: Request, code: str, message: str) -> Response:
    return Response(request_id=request.request_id, ok=False, error=code, message=message)
