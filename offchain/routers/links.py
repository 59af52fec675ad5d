"""What a router's node links and mesh links share: refusing a stream, pacing pings, stake.

A router holds two kinds of link: node links (``node_links.py``), the streams compute nodes
open to it, and mesh links (``mesh_links.py``), one stream each way with every neighbour
router. Both ping their peer, refuse bad input at the same boundary, and ask the chain view
whether the peer's address is staked.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import trio

from offchain.chain.identity import RoleCheck, StakeCheck, stake_check_for
from offchain.net.boundary import StreamGuard
from offchain.runtime.metrics import AgentMetrics

if TYPE_CHECKING:
    from offchain.chain.stake_view import StakeView

logger = logging.getLogger(__name__)

# Pings awaiting their pong per link at most; the oldest is forgotten beyond it.
PINGS_KEPT = 8
# A new node or mesh neighbour waits at most this long for the chain view to read an address it
# has not seen (then it counts as unstaked until a read finds its stake). Kept under the hello
# timeout, which the other end of a mesh link applies to our answer.
STAKE_WAIT_S = 2.0


def drop_stream(
    guard: StreamGuard, metrics: AgentMetrics, peer: str, kind: str, reason: str, detail: str
) -> None:
    """Refuse ``peer``'s ``kind`` stream for ``reason`` at the boundary (logged, counted, held)."""
    if guard.should_log():
        logger.warning("dropped %s stream from %s: reason=%s (%s)", kind, peer, reason, detail)
    metrics.errors.labels(reason=reason).inc()
    guard.reject(peer, kind, reason, detail, log=False)


def note_ping(sent: dict[int, float], nonce: int, now: float) -> None:
    """Remember that ping ``nonce`` left at ``now``, forgetting the oldest beyond ``PINGS_KEPT``."""
    sent[nonce] = now
    if len(sent) > PINGS_KEPT:
        sent.pop(min(sent))


class Stake:
    """Who is staked for which role: the chain view when there is one, else the static lists."""

    def __init__(self, roles: RoleCheck, view: "StakeView | None", hello_timeout_s: float) -> None:
        self.roles = roles
        self.view = view
        self.wait_s = min(STAKE_WAIT_S, hello_timeout_s / 2)

    def __call__(self, address: str, role: int) -> bool:
        """Return whether ``address`` is staked for ``role`` as far as the view knows now."""
        return self.roles(address, role)

    def check_for(self, role: int) -> StakeCheck:
        """Return the one-role check of ``role``."""
        return stake_check_for(self.roles, role)

    async def settle(self, address: str, role: int) -> bool:
        """Return whether ``address`` is staked for ``role``, giving the chain view a moment.

        Once per new node or mesh link, never per request: an address the view has not read
        yet would otherwise count as unstaked until a change re-marks it.
        """
        if self.view is None:
            return self.roles(address, role)
        with trio.move_on_after(self.wait_s):
            return await self.view.settle(address, role)
        return self.roles(address, role)

    @contextmanager
    def tracking(self, address: str, role: int) -> Iterator[None]:
        """Keep ``address`` tracked by the chain view while the block runs.

        A linked peer's address stays tracked, so that a change of its stake reaches the
        router (``StakeView.subscribe``).
        """
        if self.view is None or not address:
            yield
            return
        self.view.hold(address, role)
        try:
            yield
        finally:
            self.view.release(address, role)
