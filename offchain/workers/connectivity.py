"""A compute node's links to routers: dial out, keep the connections, reconnect with backoff.

The node holds ``links`` connections, each to a different router from its list. A link that
fails moves on to the next router not already held, after an exponential backoff with jitter,
so the nodes of a dead router spread over the others without a thundering herd.
"""

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import multiaddr
import trio
from libp2p.abc import IHost, INetStream
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from offchain.net import protocols
from offchain.net.framing import FrameError, FrameReader
from offchain.net.host import forget_failed_dials
from offchain.net.messages import Hello, Load, Ping, Pong, receive
from offchain.net.wire import NET_ERRORS, reset_quietly, send

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


def backoff_delay(attempt: int, policy: LinkPolicy, rng: random.Random) -> float:
    """Return the wait before reconnect ``attempt`` (0-based): capped exponential, full jitter."""
    cap = min(policy.backoff_max_s, policy.backoff_initial_s * (2 ** min(attempt, 30)))
    return rng.uniform(cap / 2, cap)


class RouterLinks:
    """Keeps a node's control streams open to its routers."""

    def __init__(
        self,
        host: IHost,
        routers: list[str],
        hello: Callable[[], Hello],
        queue_depth: Callable[[], int],
        policy: LinkPolicy,
        rng: random.Random | None = None,
    ) -> None:
        if not routers:
            raise ValueError("a node needs at least one router address")
        self.host = host
        self.infos: list[PeerInfo] = [info_from_p2p_addr(multiaddr.Multiaddr(a)) for a in routers]
        self.router_ids = frozenset(i.peer_id.to_string() for i in self.infos)
        self.hello = hello
        self.queue_depth = queue_depth
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
            if self.infos[index].peer_id.to_string() not in self.held:
                return index
        return None

    def _notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def _slot(self, slot: int) -> None:
        cursor = slot
        attempt = 0
        while True:
            index = self._pick(cursor)
            if index is None:
                await trio.sleep(backoff_delay(attempt, self.policy, self.rng))
                attempt += 1
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
                attempt = 0
            cursor = index + 1
            delay = backoff_delay(attempt, self.policy, self.rng)
            attempt += 1
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
        lock = trio.Lock()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._report_load, stream, lock)
                await self._answer_pings(stream, lock, peer)
                nursery.cancel_scope.cancel()
        finally:
            await reset_quietly(stream)

    async def _answer_pings(self, stream: INetStream, lock: trio.Lock, peer: str) -> None:
        reader = FrameReader(stream)
        while True:
            try:
                with trio.fail_after(self.policy.silence_s):
                    ping = await receive(reader, Ping)
                async with lock:
                    await send(stream, Pong(ping.nonce, self.queue_depth()))  # type: ignore[union-attr]
            except trio.TooSlowError:
                logger.warning("router %s went silent", peer)
                return
            except FrameError as exc:
                if exc.reason != "truncated":
                    logger.warning("router %s sent a bad frame: %s", peer, exc)
                return
            except NET_ERRORS as exc:
                logger.info("router %s link lost: %s", peer, type(exc).__name__)
                return

    async def _report_load(self, stream: INetStream, lock: trio.Lock) -> None:
        last = -1
        while True:
            depth = self.queue_depth()
            if depth != last:
                try:
                    async with lock:
                        await send(stream, Load(depth))
                except NET_ERRORS:
                    return
                last = depth
            await trio.sleep(self.policy.load_interval_s)
