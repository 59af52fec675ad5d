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
from collections.abc import Callable
from dataclasses import dataclass

from libp2p.custom_types import THandler
from libp2p.io.abc import ReadWriteCloser
from libp2p.transport.tcp.tcp import TCP, TCPListener

from offchain.net.conduct import ConductPolicy, PeerConduct

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
    """Cut-offs per source address, and the sources refused until when.

    The record is ``PeerConduct``'s, keyed by address instead of peer id: a cut-off is a
    source's strike.
    """

    def __init__(
        self,
        policy: GatePolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.policy = policy or GatePolicy()
        self._clock = clock
        self._on_refused = on_refused
        self._sources = PeerConduct(
            ConductPolicy(
                strikes=self.policy.cut_offs,
                window_s=self.policy.window_s,
                cool_down_s=self.policy.cool_down_s,
                max_tracked=self.policy.max_tracked,
            )
        )
        self.refused = 0

    def note_cut_off(self, source: str) -> bool:
        """Record a peer from ``source`` cut off; return True if the source is now refused."""
        if not self._sources.strike(source, self._clock()):
            return False
        policy = self.policy
        logger.warning(
            "refusing new connections from %s for %.0f s: %d peers from it cut off within %.0f s",
            source,
            policy.cool_down_s,
            policy.cut_offs,
            policy.window_s,
        )
        return True

    def refuses(self, source: str) -> bool:
        """Return whether ``source`` is refused now (without counting a refusal)."""
        return self._sources.banned_for(source, self._clock()) > 0

    def allows(self, source: str) -> bool:
        """Return whether a new connection from ``source`` may go on to its handshake."""
        if not self.refuses(source):
            return True
        self.refused += 1
        if self._on_refused is not None:
            self._on_refused(source)
        return False


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
