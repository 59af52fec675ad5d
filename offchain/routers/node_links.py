"""A router's node links: the streams compute nodes open to it, and the routing table they fill.

A compute node dials in and opens one link stream: its hello first, then its load reports and
pongs, and its answers to the router's requests, all in turn on the same stream; the router
sends its pings and the requests on it. So nodes need no public port. While the link lives
the node is in the routing table, and its link is its session in ``sessions``, which carries
the router's requests to it (``call``).
"""

import functools
import itertools
import logging
import random
from dataclasses import replace

import trio
from libp2p.abc import IHost, INetStream

from offchain.chain.identity import StakeCheck, classify_peer
from offchain.net.boundary import StreamGuard
from offchain.net.framing import FrameReader, receive
from offchain.net.session import ClientSession, SessionEnded, SessionPool
from offchain.net.streams import NET_ERRORS, peer_id, remote_peer, reset_quietly
from offchain.protocol.frames import FrameError
from offchain.protocol.roles import ROLE_COMPUTE
from offchain.protocol.wire import Hello, Load, Message, Ping, Pong, Request, Response
from offchain.routers import planner
from offchain.routers import table as tablelib
from offchain.routers.config import RouterConfig
from offchain.routers.links import Stake, drop_stream, note_ping
from offchain.runtime.metrics import AgentMetrics

logger = logging.getLogger(__name__)


def ping_interval(
    nodes: int, ping_interval_s: float, max_pings_per_s: float, max_ping_interval_s: float
) -> float:
    """Return the ping period of each node link for ``nodes`` linked nodes.

    The configured period, stretched so that all pings stay under ``max_pings_per_s`` (a
    router with thousands of idle nodes must not spend its CPU on pings), and never beyond
    ``max_ping_interval_s``.
    """
    return min(max(ping_interval_s, nodes / max_pings_per_s), max_ping_interval_s)


class NodeLinks:
    """Holds the compute nodes' links, their entries in the routing table, and their sessions.

    ``handle`` serves one node's link stream (the router's handler of ``NODE_CONTROL``);
    ``call`` sends a request to a linked node and returns its answer. ``table`` is the
    routing table, replaced (it is immutable) at each change.
    """

    def __init__(
        self,
        host: IHost,
        config: RouterConfig,
        guard: StreamGuard,
        metrics: AgentMetrics,
        stake: Stake,
        rng: random.Random,
    ) -> None:
        self.config = config
        self.guard = guard
        self.metrics = metrics
        self.stake = stake
        self.rng = rng
        self.is_staked: StakeCheck = stake.check_for(ROLE_COMPUTE)
        self.table = tablelib.RoutingTable()
        # Nodes' sessions are their own link streams, adopted as they join (``_serve``).
        self.sessions = SessionPool(host, None)
        # The newest link of each node: an older one ending leaves the node in the table.
        self._links: dict[str, object] = {}
        self._nonces = itertools.count(1)

    # ------------------------------------------------------------------ links

    async def handle(self, stream: INetStream) -> None:
        """Serve a compute node's link stream: its hello, then its session until it ends."""
        peer = remote_peer(stream)
        reader = FrameReader(stream)
        try:
            with trio.fail_after(self.config.hello_timeout_s):
                hello = await receive(reader, Hello)
        except trio.TooSlowError:
            self._drop(peer, "timeout", "no hello in time")
            await reset_quietly(stream)
            return
        except FrameError as exc:
            self._drop(peer, exc.reason, str(exc))
            await reset_quietly(stream)
            return
        assert isinstance(hello, Hello)
        address, staked = classify_peer(hello.binding, peer, self.is_staked)
        with self.stake.tracking(address, ROLE_COMPUTE):
            if address and not staked and self.stake.view is not None:
                staked = await self.stake.settle(address, ROLE_COMPUTE)
            await self._serve(stream, reader, peer, hello, address, staked)

    async def _serve(
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
        self._links[peer] = token
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
        self.count()
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
            on_message=functools.partial(self._report, peer, sent),
            silence_s=lambda: 3 * self.ping_interval() * 1.2 + 2,
        )
        node_id = peer_id(peer)
        self.sessions.adopt(node_id, session)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ping, session, sent)
                end = await session.run()
                if end.reason == "timeout":
                    self._drop(peer, "timeout", "node silent")
                elif end.reason not in ("gone", "closed"):
                    self._drop(peer, end.reason, str(end))
                nursery.cancel_scope.cancel()
        finally:
            self.sessions.forget(node_id, session)
            if self._links.get(peer) is token:
                del self._links[peer]
                self.table = tablelib.remove_node(self.table, peer)
                self.count()
                logger.info("node %s left", peer)
            await reset_quietly(stream)

    def _drop(self, peer: str, reason: str, detail: str) -> None:
        drop_stream(self.guard, self.metrics, peer, "control", reason, detail)

    def count(self) -> None:
        """Set the gauges of linked and staked nodes."""
        self.metrics.nodes.set(len(self.table.nodes))
        if self.metrics.staked_nodes is not None:
            self.metrics.staked_nodes.set(sum(e.staked for e in self.table.nodes.values()))

    def ping_interval(self) -> float:
        """Return the ping period for the node count now (``ping_interval``)."""
        config = self.config
        return ping_interval(
            len(self.table.nodes),
            config.ping_interval_s,
            config.max_pings_per_s,
            config.max_ping_interval_s,
        )

    async def _ping(self, session: ClientSession, sent: dict[int, float]) -> None:
        while True:
            await trio.sleep(self.ping_interval() * self.rng.uniform(0.8, 1.2))
            nonce = next(self._nonces)
            note_ping(sent, nonce, trio.current_time())
            await session.send(Ping(nonce))
            if session.closed:
                return

    def _report(self, peer: str, sent: dict[int, float], message: Message) -> None:
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

    def set_staked(self, address: str, staked: bool) -> None:
        """Re-mark the linked nodes bound to ``address`` after its stake changed on-chain."""
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
        self.count()

    # ------------------------------------------------------------------ requests

    async def call(self, node: str, request: Request) -> tuple[Response | None, str]:
        """Send ``request`` to the linked ``node``; return its answer (None if none) and why.

        The reason is the answer's error, "ok", or what ended the attempt ("timeout", "gone",
        or what ended the node's session). The table counts the task while it runs.
        """
        started = trio.current_time()
        self.table = tablelib.start_task(self.table, node, started)
        ok = False
        try:
            with trio.fail_after(planner.timeout_s(request, self.config.request_timeout_s)):
                response = await self.sessions.request(peer_id(node), request)
            ok = planner.is_final(response)
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
