"""A compute node's links to routers: dial out, keep the connections, reconnect with backoff.

The node holds ``links`` connections, each to a different router from its list. A link that
fails moves on to the next router not already held, after an exponential backoff with jitter,
so the nodes of a dead router spread over the others without a thundering herd.
"""

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import multiaddr
import trio
from libp2p.abc import IHost, INetStream
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from offchain.net.boundary import StreamGuard
from offchain.net.host import forget_failed_dials
from offchain.net.session import ServeLimits, SessionRefused, SessionServer
from offchain.net.streams import NET_ERRORS, reset_quietly, send
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.wire import Hello, Load, Message, Ping, Pong, Request, Response
from offchain.runtime.backoff import Backoff

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkPolicy:
    """How a node keeps its router links."""

    links: int = 2
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    # A link that lived this long resets the backoff.
    stable_after_s: float = 10.0
    # No ping from the router for this long: the link is dead.
    silence_s: float = 20.0
    dial_timeout_s: float = 10.0
    load_interval_s: float = 1.0


class RouterLinks:
    """Keeps a node's links to its routers open, and serves the requests that come on them.

    A link is one stream the node opens: it sends its hello, then answers the router's
    requests and pings on it and reports its load, all in turn on the same stream.
    """

    def __init__(
        self,
        host: IHost,
        routers: list[str],
        hello: Callable[[], Hello],
        queue_depth: Callable[[], int],
        policy: LinkPolicy,
        rng: random.Random | None = None,
        *,
        handle: Callable[[Request], Awaitable[Response]],
        busy: Callable[[Request], Response],
        serve_limits: ServeLimits,
        guard: StreamGuard | None = None,
    ) -> None:
        """Keep links to ``routers``.

        ``guard`` contains what a router's bytes raise, and refuses a router that keeps
        sending bad input for a cool-down.
        """
        if not routers:
            raise ValueError("a node needs at least one router address")
        self.host = host
        self.infos: list[PeerInfo] = [info_from_p2p_addr(multiaddr.Multiaddr(a)) for a in routers]
        self.router_ids = frozenset(i.peer_id.to_string() for i in self.infos)
        self.hello = hello
        self.queue_depth = queue_depth
        self.handle = handle
        self.busy = busy
        self.serve_limits = serve_limits
        self.guard = guard
        self.policy = policy
        self.rng = rng or random.Random()
        self.held: set[str] = set()
        self.connected: set[str] = set()
        self.changed = trio.Event()

    async def run(self) -> None:
        """Keep ``policy.links`` links (at most one per router) until cancelled."""
        async with trio.open_nursery() as nursery:
            for slot in range(min(self.policy.links, len(self.infos))):
                nursery.start_soon(self._slot, slot)

    def _pick(self, cursor: int) -> int | None:
        for step in range(len(self.infos)):
            index = (cursor + step) % len(self.infos)
            peer = self.infos[index].peer_id.to_string()
            if peer not in self.held and not self._cut_off(peer):
                return index
        return None

    def _cut_off(self, peer: str) -> bool:
        return self.guard is not None and self.guard.banned_for(peer) > 0

    def _notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def _slot(self, slot: int) -> None:
        cursor = slot
        backoff = Backoff(self.policy.backoff_initial_s, self.policy.backoff_max_s, self.rng)
        while True:
            index = self._pick(cursor)
            if index is None:
                await backoff.wait()
                continue
            info = self.infos[index]
            peer = info.peer_id.to_string()
            self.held.add(peer)
            started = trio.current_time()
            try:
                await self._session(info)
            finally:
                self.held.discard(peer)
                if peer in self.connected:
                    self.connected.discard(peer)
                    self._notify()
            if trio.current_time() - started >= self.policy.stable_after_s:
                backoff.reset()
            cursor = index + 1
            delay = backoff.next_delay()
            logger.info("link to router %s down; next try in %.2fs", peer, delay)
            await trio.sleep(delay)

    async def _session(self, info: PeerInfo) -> None:
        peer = info.peer_id.to_string()
        stream: INetStream | None = None
        try:
            with trio.fail_after(self.policy.dial_timeout_s):
                forget_failed_dials(self.host, info.peer_id)  # our backoff paces the redials
                await self.host.connect(info)
                stream = await self.host.new_stream(info.peer_id, [protocols.NODE_CONTROL])
                await send(stream, self.hello())
        except (trio.TooSlowError, *NET_ERRORS) as exc:
            logger.info("dial of router %s failed: %s", peer, type(exc).__name__)
            if stream is not None:
                await reset_quietly(stream)
            return
        self.connected.add(peer)
        self._notify()
        logger.info("linked to router %s", peer)
        server = SessionServer(
            stream,
            self.handle,
            # The first frame from the router may be its first ping; silence is judged the same.
            ServeLimits(
                first_timeout_s=self.policy.silence_s,
                frame_timeout_s=self.serve_limits.frame_timeout_s,
                idle_timeout_s=self.policy.silence_s,
                max_in_flight=self.serve_limits.max_in_flight,
            ),
            self.busy,
            kinds=(Ping,),
            on_message=self._pong,
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._report_load, server)
                try:
                    await self._serve(server, peer)
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            await reset_quietly(stream)

    async def _serve(self, server: SessionServer, peer: str) -> None:
        """Serve the router's requests; what its bytes raise ends this link only."""
        if self.guard is None:
            await self._serve_unguarded(server, peer)
            return
        with self.guard.contain(peer, "link"):
            await self._serve_unguarded(server, peer)

    async def _serve_unguarded(self, server: SessionServer, peer: str) -> None:
        try:
            await server.run()
            if server.went_quiet:
                logger.warning("router %s went silent", peer)
        except SessionRefused as exc:
            if exc.reason == "truncated":
                logger.info("router %s link lost: %s", peer, exc.detail)
            elif self.guard is not None:
                self.guard.reject(peer, "link", exc.reason, exc.detail)
            else:
                logger.warning(
                    "router %s link dropped: reason=%s (%s)", peer, exc.reason, exc.detail
                )

    def _pong(self, message: Message) -> Pong:
        assert isinstance(message, Ping)
        return Pong(message.nonce, self.queue_depth())

    async def _report_load(self, server: SessionServer) -> None:
        last = -1
        while True:
            depth = self.queue_depth()
            if depth != last:
                await server.send(Load(depth))
                last = depth
            await trio.sleep(self.policy.load_interval_s)
