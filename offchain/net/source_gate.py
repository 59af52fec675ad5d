"""Refusing connections from a source address that keeps sending peers we cut off.

Peer ids cost nothing, so a peer cut off for bad input (``net/boundary.py``) can come back at
once as a new identity, and every identity costs a router a Noise handshake and several stream
negotiations before its first refusal. A ``SourceGate`` remembers which source IP addresses the
cut-off peers connected from: a source that sends ``cut_offs`` of them within ``window_s`` is
refused new connections for ``cool_down_s``, at accept, before any handshake. Connections
already open are untouched, so peers that share the address and connected before (behind one
NAT, or on one machine) keep being served.

``GatedTCP`` is py-libp2p's TCP transport with the gate in front of its listener's handler.
"""

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from libp2p.custom_types import THandler
from libp2p.io.abc import ReadWriteCloser
from libp2p.transport.tcp.tcp import TCP, TCPListener

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatePolicy:
    """How many cut-off peers a source may send, within how long, and how long it is refused."""

    cut_offs: int = 3
    window_s: float = 60.0
    cool_down_s: float = 60.0
    # Sources remembered at most; the oldest are forgotten first.
    max_tracked: int = 16_384


class SourceGate:
    """Cut-offs per source address, and the sources refused until when (monotonic seconds)."""

    def __init__(
        self,
        policy: GatePolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.policy = policy or GatePolicy()
        self._clock = clock
        self._on_refused = on_refused
        self._cut_offs: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked: OrderedDict[str, float] = OrderedDict()
        self.refused = 0

    def note_cut_off(self, source: str) -> bool:
        """Record a peer from ``source`` cut off; return True if the source is now refused."""
        now = self._clock()
        policy = self.policy
        times = self._cut_offs.pop(source, None) or deque(maxlen=policy.cut_offs)
        while times and now - times[0] >= policy.window_s:
            times.popleft()
        times.append(now)
        self._cut_offs[source] = times
        _trim(self._cut_offs, policy.max_tracked)
        if len(times) < policy.cut_offs:
            return False
        self._blocked.pop(source, None)
        self._blocked[source] = now + policy.cool_down_s
        _trim(self._blocked, policy.max_tracked)
        logger.warning(
            "refusing new connections from %s for %.0f s: %d peers from it cut off within %.0f s",
            source,
            policy.cool_down_s,
            policy.cut_offs,
            policy.window_s,
        )
        return True

    def allows(self, source: str) -> bool:
        """Return whether a new connection from ``source`` may go on to its handshake."""
        until = self._blocked.get(source)
        if until is None:
            return True
        if until <= self._clock():
            del self._blocked[source]
            return True
        self.refused += 1
        if self._on_refused is not None:
            self._on_refused(source)
        return False


def _trim(entries: OrderedDict, size: int) -> None:
    while len(entries) > size:
        entries.popitem(last=False)


class GatedTCP(TCP):
    """py-libp2p's TCP transport, whose listeners close refused sources' connections at once."""

    def __init__(self, gate: SourceGate) -> None:
        super().__init__()
        self.gate = gate

    def create_listener(self, handler_function: THandler) -> TCPListener:
        """Return a listener that asks the gate before ``handler_function`` (the upgrade)."""
        gate = self.gate

        async def gated(stream: ReadWriteCloser) -> None:
            remote = stream.get_remote_address()
            if remote is not None and not gate.allows(remote[0]):
                await stream.close()
                return
            await handler_function(stream)

        return TCPListener(gated)
