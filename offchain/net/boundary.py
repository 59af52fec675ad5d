"""The fault boundary around every stream an agent serves, and the conduct record of its peers.

Whatever a peer sends, the worst it can do is lose its own stream: a handler wrapped by
``StreamGuard.guard`` never lets an exception reach py-libp2p (whose swarm would stop the whole
host). Refused input (``InputRejected``, from any decoder or check) and anything unexpected
are logged with the peer id and a reason, counted in ``emc_rejected_total{reason}``, the stream
is reset, and the refusal is held against the peer (``PeerConduct``): a peer refused
``strikes`` times within ``window_s`` is disconnected and refused for ``cool_down_s``, both its
new streams and its new connections. A peer may also hold only so many streams of one protocol
at once, so it cannot pin an agent's memory or tasks with streams it never uses.
"""

import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee

from offchain.net.conduct import PeerConduct
from offchain.net.source_gate import SourceGate
from offchain.net.streams import NET_ERRORS, peer_id, remote_peer, reset_quietly
from offchain.protocol.errors import InputRejected
from offchain.runtime.metrics import AgentMetrics

logger = logging.getLogger(__name__)

StreamHandler = Callable[[INetStream], Awaitable[None]]

# Reasons counted as rejections but never held against a peer: an honest peer on a bad network
# can be slow, and an honest agent can have a bug.
NOT_EVIDENCE = frozenset({"timeout", "internal-error"})
# Streams a peer may hold open on one protocol at once, unless the agent says otherwise.
DEFAULT_STREAMS_PER_PEER = 8
# Refusals logged a second at most, over a burst: every one is counted in the metric anyway.
LOG_LINES_PER_S = 20
LOG_BURST = 100


@dataclass
class Outcome:
    """Whether the work ``StreamGuard.contain`` watched over failed."""

    failed: bool = False


class StreamGuard:
    """One agent's fault boundary: wraps its stream handlers and cuts off peers that misbehave.

    ``run`` must be running (in the agent's nursery) for cut-off peers to be disconnected;
    until it runs they are still refused stream by stream.
    """

    def __init__(
        self,
        host: IHost,
        metrics: AgentMetrics,
        conduct: PeerConduct | None = None,
        clock: Callable[[], float] = trio.current_time,
        gate: SourceGate | None = None,
    ) -> None:
        """Guard ``host``'s streams; ``gate`` hears the source address of each peer cut off."""
        self.host = host
        self.gate = gate
        self.metrics = metrics
        self.conduct = conduct or PeerConduct()
        self._clock = clock
        self._open: dict[tuple[str, str], int] = {}
        self._to_disconnect_in, self._to_disconnect_out = trio.open_memory_channel[str](math.inf)
        self._pending_disconnects: set[str] = set()
        self._log_tokens = float(LOG_BURST)
        self._log_at = -math.inf  # agents are built before trio runs: no clock yet
        self._unlogged = 0
        host.get_network().register_notifee(_RefuseCutOff(self))

    # ------------------------------------------------------------------ handlers

    def guard(
        self, kind: str, handler: StreamHandler, max_per_peer: int = DEFAULT_STREAMS_PER_PEER
    ) -> StreamHandler:
        """Return ``handler`` behind the boundary; ``kind`` names the stream in logs."""

        async def guarded(stream: INetStream) -> None:
            try:
                peer = remote_peer(stream)
            except AttributeError:
                await reset_quietly(stream)
                return
            banned_for = self.conduct.banned_for(peer, self._clock())
            if banned_for > 0:
                self._count("cooling-down")
                logger.debug(
                    "refused %s stream from %s: cut off, %.0f s left", kind, peer, banned_for
                )
                self.cut_off(peer)
                await reset_quietly(stream)
                return
            key = (kind, peer)
            held = self._open.get(key, 0)
            if held >= max_per_peer:
                self.reject(peer, kind, "too-many-streams", f"{held} {kind} streams open")
                await reset_quietly(stream)
                return
            self._open[key] = held + 1
            try:
                with self.contain(peer, kind) as outcome:
                    await handler(stream)
                if outcome.failed:
                    await reset_quietly(stream)
            finally:
                left = self._open[key] - 1
                if left:
                    self._open[key] = left
                else:
                    del self._open[key]

        return guarded

    @contextmanager
    def contain(self, peer: str, kind: str) -> Iterator["Outcome"]:
        """Contain whatever the work on ``peer``'s ``kind`` stream raises (not cancellation).

        For the streams an agent opens itself (a node's links, a router's outbound mesh links),
        which no handler wraps. The caller resets the stream when ``outcome.failed``.
        """
        outcome = Outcome()
        try:
            yield outcome
        except InputRejected as exc:
            outcome.failed = True
            self.reject(peer, kind, exc.reason, str(exc))
        except trio.TooSlowError:
            outcome.failed = True
            self.reject(peer, kind, "timeout", "no input in time")
        except NET_ERRORS as exc:
            outcome.failed = True
            logger.debug("%s stream with %s ended: %s", kind, peer, type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - the boundary: nothing may reach the host
            outcome.failed = True
            refused = _first_refusal(exc)
            if refused is not None:  # raised inside a nursery of the handler's
                self.reject(peer, kind, refused.reason, str(refused))
            elif isinstance(exc, ExceptionGroup) and exc.split(NET_ERRORS)[1] is None:
                logger.debug("%s stream with %s ended: %s", kind, peer, exc)
            else:
                if self.should_log():
                    logger.exception("%s stream with %s failed in its handler", kind, peer)
                self.reject(peer, kind, "internal-error", type(exc).__name__, log=False)

    def set_handler(
        self,
        protocol: str,
        kind: str,
        handler: StreamHandler,
        max_per_peer: int = DEFAULT_STREAMS_PER_PEER,
    ) -> None:
        """Serve ``protocol`` on the host with ``handler`` behind the boundary."""
        self.host.set_stream_handler(protocol, self.guard(kind, handler, max_per_peer))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ refusals

    def reject(
        self,
        peer: str,
        kind: str,
        reason: str,
        detail: str,
        evidence: bool | None = None,
        *,
        log: bool = True,
    ) -> bool:
        """Log, count and hold a refusal against ``peer``; return True if it is now cut off.

        ``evidence`` says whether the refusal counts against the peer; by default it does
        unless ``reason`` is one of ``NOT_EVIDENCE``. ``log=False`` when the caller logged it.
        """
        if log and self.should_log():
            logger.warning("refused %s input from %s: reason=%s (%s)", kind, peer, reason, detail)
        self._count(reason)
        if not (reason not in NOT_EVIDENCE if evidence is None else evidence):
            return False
        if not self.conduct.strike(peer, self._clock()):
            return False
        policy = self.conduct.policy
        logger.warning(
            "cut off %s: %d refusals within %.0f s, last reason=%s; refused for %.0f s",
            peer,
            policy.strikes,
            policy.window_s,
            reason,
            policy.cool_down_s,
        )
        self.metrics.cut_off.inc()
        if self.gate is not None:
            for source in self._sources(peer):
                self.gate.note_cut_off(source)
        self.cut_off(peer)
        return True

    def _sources(self, peer: str) -> set[str]:
        """Return the IP addresses ``peer``'s connections come from."""
        sources = set()
        try:
            connections = self.host.get_network().get_connections(peer_id(peer))
        except ValueError:
            return sources
        for conn in connections:
            try:
                remote = conn.muxed_conn.get_remote_address()  # type: ignore[attr-defined]
            except (AttributeError, *NET_ERRORS):
                continue
            if remote is not None:
                sources.add(remote[0])
        return sources

    def should_log(self) -> bool:
        """Return whether a refusal may be logged now (``LOG_LINES_PER_S``, burst ``LOG_BURST``).

        A flood of bad input must not become a flood of log lines (disk and CPU): beyond the
        rate, refusals are only counted, and the next line logged says how many were not.
        """
        now = self._clock()
        self._log_tokens = min(LOG_BURST, self._log_tokens + (now - self._log_at) * LOG_LINES_PER_S)
        self._log_at = now
        if self._log_tokens < 1:
            self._unlogged += 1
            return False
        self._log_tokens -= 1
        if self._unlogged:
            logger.warning(
                "%d more refusals not logged (over %d lines/s)", self._unlogged, LOG_LINES_PER_S
            )
            self._unlogged = 0
        return True

    def banned_for(self, peer: str) -> float:
        """Return how many seconds ``peer`` is still refused for."""
        return self.conduct.banned_for(peer, self._clock())

    def cut_off(self, peer: str) -> None:
        """Disconnect ``peer`` (once ``run`` gets to it)."""
        if peer in self._pending_disconnects:
            return
        self._pending_disconnects.add(peer)
        self._to_disconnect_in.send_nowait(peer)

    def _count(self, reason: str) -> None:
        self.metrics.rejected.labels(reason=reason).inc()

    async def run(self) -> None:
        """Disconnect the peers that are cut off, until cancelled."""
        async for peer in self._to_disconnect_out:
            self._pending_disconnects.discard(peer)
            try:
                await self.host.disconnect(peer_id(peer))
            except (ValueError, *NET_ERRORS) as exc:
                logger.debug("disconnect of %s failed: %s", peer, exc)


def _first_refusal(exc: BaseException) -> InputRejected | None:
    """Return the first ``InputRejected`` inside an exception group, if any."""
    if isinstance(exc, InputRejected):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first_refusal(inner)
            if found is not None:
                return found
    return None


class _RefuseCutOff(INotifee):
    """Disconnects a cut-off peer as soon as it connects again."""

    def __init__(self, guard: StreamGuard) -> None:
        self._guard = guard

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        """Ignore stream events (the handlers refuse the streams)."""

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        """Ignore stream events."""

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        """Disconnect a peer still cooling down."""
        peer = conn.muxed_conn.peer_id.to_string()
        if self._guard.banned_for(peer) > 0:
            self._guard._count("cooling-down")
            self._guard.cut_off(peer)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        """Ignore disconnections."""

    async def listen(self, network: INetwork, multiaddr: Any) -> None:
        """Ignore listen events."""

    async def listen_close(self, network: INetwork, multiaddr: Any) -> None:
        """Ignore listen events."""
