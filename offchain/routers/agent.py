"""The router agent: wires a libp2p host to its node links, mesh links, planner and gossip.

Compute nodes dial in and hold node links (``node_links.py``); neighbour routers hold mesh
links (``mesh_links.py``). A caller's request, or one a neighbour forwards, is admitted and
routed by the planner's decisions (``planner.py``): a local node, one retry on another, else
the mesh's next hop. With ``check_invocations`` each signed order is admitted before routing
and the node's receipt checked after (``invocations.py``), and each served order's
countersigned record is gossiped to staked routers and validators (``gossip.py``).
"""

import gc
import json
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import multiaddr
import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.peer.peerstore import PeerStoreError

from offchain.chain.identity import (
    BindingError,
    RoleCheck,
    classify_peer,
    encode_binding,
    make_binding,
    static_role_check,
)
from offchain.crypto.keys import generate_keypair
from offchain.net.boundary import StreamGuard
from offchain.net.conduct import ConductPolicy, PeerConduct
from offchain.net.framing import FrameReader, receive
from offchain.net.host import identity_from_seed, listen_addrs_of, make_host
from offchain.net.limits import router_limits
from offchain.net.session import ServeLimits, SessionRefused, serve_session
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
from offchain.protocol.errors import InputRejected
from offchain.protocol.invocation import (
    EscrowInfo,
    InvocationRecord,
    NodeInfo,
    admits,
    encode_record,
)
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER, ROLE_VALIDATOR
from offchain.protocol.wire import Join, RecordBatch, Request, Response, encode
from offchain.routers import mesh as meshlib
from offchain.routers import planner
from offchain.routers import table as tablelib
from offchain.routers.admission import AdmissionPolicy, Ticket
from offchain.routers.config import RouterConfig
from offchain.routers.gossip import Broadcast
from offchain.routers.invocations import InvocationChecks
from offchain.routers.links import Stake, drop_stream
from offchain.routers.mesh_links import MeshLinks
from offchain.routers.node_links import NodeLinks
from offchain.runtime.gc_policy import ChurnCollector
from offchain.runtime.metrics import AgentMetrics, make_metrics, serve_metrics

if TYPE_CHECKING:
    from offchain.chain.stake_view import StakeView

logger = logging.getLogger(__name__)

# Records wait at most this long to share a gossip message with others.
RECORD_BATCH_S = 0.1
# Records held for gossip at most; beyond it they are dropped and counted.
RECORD_QUEUE = 4_096
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
    """One router: a libp2p host, its node links and mesh links, and the requests it routes."""

    def __init__(
        self,
        config: RouterConfig,
        metrics: AgentMetrics | None = None,
        invocations: InvocationChecks | None = None,
    ) -> None:
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
        self.metrics = metrics or make_metrics("router")
        # Every stream handler runs behind it; it cuts off peers that keep sending bad input.
        self.guard = StreamGuard(
            self.host,
            self.metrics,
            PeerConduct(ConductPolicy(strikes=config.strikes, cool_down_s=config.cool_down_s)),
            gate=self.gate,
        )
        self.rng = random.Random()
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
        self.stake: StakeView | None = self._stake_view(config, static)
        roles: RoleCheck = static if self.stake is None else self.stake
        self.roles = Stake(roles, self.stake, config.hello_timeout_s)
        # Full garbage collections after churn (gc_policy): what ended connections left behind.
        self.garbage = ChurnCollector(last_full=time.monotonic())
        self.broadcast = (
            Broadcast(
                self.host,
                self.metrics,
                config.gossip_rate_per_s,
                config.gossip_burst,
                guard=self.guard,
                # A record's origin is a router whose signed summary we took (a staked router).
                known_origin=lambda peer: peer in self.mesh_links.mesh.summaries,
            )
            if config.gossip
            else None
        )
        self.node_links = NodeLinks(
            self.host, config, self.guard, self.metrics, self.roles, self.rng
        )
        self.mesh_links = MeshLinks(
            self.host,
            config,
            self.guard,
            self.metrics,
            self.roles,
            self.rng,
            key_pair=self.key_pair,
            eth=self.eth,
            table=lambda: self.node_links.table,
            in_flight=lambda: self.in_flight,
            broadcast=self.broadcast,
        )
        if self.stake is not None:
            self.stake.subscribe(self._stake_changed)
        # Records waiting for the next batch (their encodings); a list, not a channel, so that
        # answering a request never wakes the publisher (it wakes every RECORD_BATCH_S instead).
        self._records: list[bytes] = []
        # The checks of signed orders and node receipts (routers/invocations.py): given, or
        # built on the chain's market when ``check_invocations``; None routes unchecked.
        self._market_view = None
        self.invocations = invocations or self._invocation_checks(config)

    def _invocation_checks(self, config: RouterConfig) -> InvocationChecks | None:
        """Return the checks of signed orders on the configured chain's market, if asked for."""
        if not config.check_invocations:
            return None
        assert config.chain_rpc is not None  # RouterConfig refuses check_invocations without
        # Imported here, as the stake view: web3 is for routers that read the chain.
        from offchain.chain import market_view
        from offchain.chain.invocation_market import open_market_view

        checks: InvocationChecks | None = None
        domain, view = open_market_view(
            config.chain_rpc,
            config.deployment,
            config.chain_id,
            # The router's record of used nonces: those of the orders it admitted.
            nonce_used=lambda user, nonce: (
                checks is not None and checks.admission.nonce_held(user, nonce)
            ),
        )
        checks = InvocationChecks(
            domain,
            view,
            self.eth,
            AdmissionPolicy(config.invocation_rate_per_s, config.invocation_burst),
            ready_timeout_s=config.read_timeout_s,
            node_key=market_view.node_key,
        )
        self._market_view = view

        # A commit's proven spend leaves the users' pending spend as the view reads it.
        def escrow_read(key: market_view.MarketKey, value: EscrowInfo) -> None:
            if key[0] == market_view.ESCROW and checks is not None:
                checks.escrow_changed(key[1], value)

        view.subscribe_keys(escrow_read)
        if self.metrics.view_answers is not None:
            self.metrics.view_answers.labels(answer="hit").set_function(lambda: view.hits)
            self.metrics.view_answers.labels(answer="miss").set_function(lambda: view.misses)
        return checks

    def _stake_view(self, config: RouterConfig, static: RoleCheck) -> "StakeView | None":
        """Return the chain view of stake when a chain is configured (it reads the chain now)."""
        if config.chain_rpc is None:
            return None
        # Imported here: web3 adds half a second to the start of routers that need none.
        from offchain.chain import stake_view

        # A wrong chain id or record is an error before we listen.
        reader = stake_view.connect_staking(config.chain_rpc, config.deployment, config.chain_id)
        return stake_view.StakeView(
            reader,
            static,
            refresh_s=config.stake_refresh_s,
            follow_s=config.stake_follow_s or None,
            max_tracked=config.stake_max_tracked,
            errors=self.metrics.errors,
        )

    # The state the links hold, read here by operators' tools and tests.

    @property
    def table(self) -> tablelib.RoutingTable:
        """Return the routing table of the linked compute nodes."""
        return self.node_links.table

    @property
    def mesh(self) -> meshlib.MeshState:
        """Return the router's view of the mesh."""
        return self.mesh_links.mesh

    @property
    def conduct(self) -> meshlib.Conduct:
        """Return the evidence held against mesh neighbours, and who is cut off."""
        return self.mesh_links.conduct

    @conduct.setter
    def conduct(self, conduct: meshlib.Conduct) -> None:
        """Replace the mesh conduct record (``policy``: strikes, window, cool-down)."""
        self.mesh_links.conduct = conduct

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: trio.Event) -> None:
        """Serve until ``stop`` is set."""
        # A node holds one link per router (two while one replaces another); a caller or a
        # router a few sessions; a neighbour one mesh link each way.
        guard = self.guard
        guard.set_handler(protocols.NODE_CONTROL, "control", self.node_links.handle, 2)
        guard.set_handler(protocols.INVOKE, "invoke", self._handle_invoke, 16)
        guard.set_handler(protocols.MESH, "mesh", self.mesh_links.handle, 2)
        if self.broadcast is not None:
            guard.set_handler(protocols.GOSSIP_JOIN, "join", self._handle_join, 2)
        network = self.host.get_network()
        network.register_notifee(
            _PeerStoreJanitor(self.host, self._count_connections, self.garbage.note_ended)
        )
        with trio.CancelScope() as teardown:
            async with self.host.run([multiaddr.Multiaddr(self.config.listen)]):
                async with (
                    self.node_links.sessions,
                    self.mesh_links.sessions,
                    trio.open_nursery() as nursery,
                ):
                    nursery.start_soon(self.guard.run)
                    if self.stake is not None:
                        nursery.start_soon(self.stake.run)
                    if self._market_view is not None:
                        nursery.start_soon(self._market_view.run)
                    elif self.config.peers and not self.config.staked_routers:
                        logger.warning(
                            "no staked routers configured: every mesh link will be refused"
                        )
                    for addr in self.config.peers:
                        nursery.start_soon(self.mesh_links.keep, addr)
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

    # ------------------------------------------------------------------ stake

    def _stake_changed(self, address: str, role: int, staked: bool) -> None:
        """Follow a change in the chain view: re-mark linked nodes, drop unstaked neighbours."""
        if role == ROLE_COMPUTE:
            self.node_links.set_staked(address, staked)
        elif role == ROLE_VALIDATOR and not staked:
            self._revoke_gossip(address)
        elif role == ROLE_ROUTER and not staked:
            self._revoke_gossip(address)
            self.mesh_links.drop_address(address)

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
            drop_stream(self.guard, self.metrics, peer, "invoke", exc.reason, exc.detail)
            await reset_quietly(stream)

    def _busy(self, request: Request) -> Response:
        self.metrics.requests.labels(outcome="busy").inc()
        return planner.refusal(request, planner.busy(self.in_flight))

    async def _admit(self, request: Request, peer: str) -> Response:
        held = self._peer_in_flight.get(peer, 0)
        refused = planner.admit(
            request,
            peer,
            self.me,
            self.in_flight,
            held,
            self.config.max_in_flight,
            peer in self.mesh_links.linked,
        )
        if refused is not None:
            if refused.error == "busy":
                return self._busy(request)
            if refused.error == "bad-path":
                self.metrics.errors.labels(reason="bad-path").inc()
            return planner.refusal(request, refused)
        self._peer_in_flight[peer] = held + 1
        self.in_flight += 1
        try:
            if self.invocations is None:
                response, _node = await self.route(request)
                return response
            return await self._route_checked(request, self.invocations)
        finally:
            self.in_flight -= 1
            left = self._peer_in_flight[peer] - 1
            if left:
                self._peer_in_flight[peer] = left
            else:
                del self._peer_in_flight[peer]

    async def _route_checked(self, request: Request, checks: InvocationChecks) -> Response:
        """Admit ``request``'s signed order, route it, and check and record the answer.

        A refused order, or a refused answer, is answered with its reason; either way the order
        is released and nothing is billed. Only a served order keeps its price pending.
        """
        try:
            ticket = await checks.admit(request)
        except InputRejected as exc:  # the checks' reasons, and the decoders'
            self.metrics.rejected.labels(reason=exc.reason).inc()
            return _refused(request, exc)
        served = False
        try:
            response, node = await self.route(
                request, checks.to_node(request), self._barred(checks, ticket)
            )
            if not response.ok:
                return response
            if node is None:  # another router served it, and records it
                checks.check_forwarded(ticket, response)
            else:
                entry = self.node_links.table.nodes.get(node)
                address = entry.address if entry is not None else ""
                self._record(await checks.settle(ticket, response, address))
            served = True
            return response
        except InputRejected as exc:  # the checks' reasons, and the decoders'
            self.metrics.rejected.labels(reason=exc.reason).inc()
            logger.warning("answer to %s refused: %s", request.request_id.hex(), exc)
            return _refused(request, exc)
        finally:
            if not served:
                checks.failed(ticket)

    async def route(
        self, request: Request, for_node: Request | None = None, barred: Sequence[str] = ()
    ) -> tuple[Response, str | None]:
        """Return the answer to ``request`` and the local node that gave it (None: none did).

        Carries out the planner's steps: a local node is sent ``for_node`` (the request as a
        node sees it, when it differs) and nodes in ``barred`` are never tried; the mesh is
        sent ``request`` as it came.
        """
        tried: list[str] = []
        failures: list[str] = []
        while True:
            step = planner.next_step(
                self.node_links.table,
                self.mesh_links.mesh,
                request,
                trio.current_time(),
                self.rng,
                tried,
                failures,
                barred,
            )
            if isinstance(step, planner.Serve):
                node = step.node
                tried.append(node)
                response, reason = await self.node_links.call(node, for_node or request)
                if response is not None and planner.is_final(response):
                    return response, node
                failures.append(planner.failure(node, reason))
                if len(tried) < planner.MAX_ATTEMPTS:
                    logger.info(
                        "request %s failed on node %s (%s); retrying elsewhere",
                        request.request_id.hex(),
                        node,
                        reason,
                    )
            elif isinstance(step, planner.Forward):
                return await self.mesh_links.forward(step.next_hop, request), None
            else:
                return planner.refusal(request, step), None

    def _barred(self, checks: InvocationChecks, ticket: Ticket) -> list[str]:
        """Return the linked nodes that ``ticket``'s socket's serving terms do not admit.

        That is every node but the issuer for an issuer-only socket, and the nodes linked
        without a compute stake for an open socket that requires one, by the stake and workloads
        the router knows for each link. The receipt is still checked against the node's registry
        entry on the chain (``check_node``), which has the last word.
        """
        socket = checks.view.socket(ticket.order.socket_id)
        if socket is None:
            return []
        table = self.node_links.table
        barred = []
        for peer in table.by_workload.get(ticket.order.workload, ()):
            entry = table.nodes[peer]
            linked = NodeInfo(staked=entry.staked, blacklisted=False, workloads=entry.workloads)
            if not admits(socket, entry.address, linked):
                barred.append(peer)
        return barred

    # ------------------------------------------------------------------ gossip

    def _record(self, record: InvocationRecord) -> None:
        """Queue a countersigned record for gossip (dropped, and counted, when full)."""
        if self.broadcast is None:
            return
        if len(self._records) >= RECORD_QUEUE:
            self.metrics.gossip.labels(topic=protocols.TOPIC_RECORDS, outcome="dropped").inc()
            return
        self._records.append(encode_record(record))

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

    async def _publish_batch(self, batch: list[bytes]) -> None:
        assert self.broadcast is not None
        try:
            await self.broadcast.publish(protocols.TOPIC_RECORDS, encode(RecordBatch(tuple(batch))))
        except NET_ERRORS as exc:
            logger.warning("%d records not gossiped: %s", len(batch), exc)

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
            if self.roles(address, role):
                return True
            if self.stake is not None and await self.roles.settle(address, role):
                return True
        return False

    def _revoke_gossip(self, address: str) -> None:
        """Stop gossiping with the peers bound to ``address`` unless it is still staked."""
        if self.broadcast is None:
            return
        if self.roles(address, ROLE_ROUTER) or self.roles(address, ROLE_VALIDATOR):
            return
        self.broadcast.revoke_address(address)


def _refused(request: Request, refusal: InputRejected) -> Response:
    """Return the answer that tells the caller why its order or its answer was refused."""
    return Response(request.request_id, False, error=refusal.reason, message=str(refusal))
