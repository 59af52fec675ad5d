"""Conduct: a peer refused ``strikes`` times within ``window_s`` is cut off for ``cool_down_s``.

The rule is defined once here (``ConductPolicy`` and ``strike``) and kept in two records: the
mutable ``PeerConduct`` of the stream fault boundary and the source gate (keys are peer ids or
source addresses), and the router mesh's immutable ``mesh.Conduct``. Times are monotonic
seconds, passed in.
"""

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConductPolicy:
    """When a peer that keeps sending bad input is cut off, and for how long."""

    strikes: int = 5
    window_s: float = 60.0
    cool_down_s: float = 300.0
    # Peers remembered at most (strikes and bans each); the oldest are forgotten first.
    max_tracked: int = 16_384

    def __post_init__(self) -> None:
        if self.strikes < 1 or self.window_s <= 0 or self.cool_down_s < 0 or self.max_tracked < 1:
            raise ValueError("strikes, window and tracked peers must be positive")


# The stream fault boundary's policy, and the defaults of ``--strikes`` and ``--cool-down``.
PEER_CONDUCT = ConductPolicy()


def strike(times: Sequence[float], now: float, policy: ConductPolicy) -> tuple[int, bool]:
    """Weigh one more strike against a peer at ``now``; return what it changes.

    ``times`` are the peer's earlier strikes, oldest first. Returns how many of the oldest no
    longer count (``window_s`` or more before ``now``: the record forgets them), and whether this
    strike is the ``strikes``-th within the window. If it is, the peer is cut off: refused until
    ``now + cool_down_s``, its strikes forgotten, and not struck again until then. If not, the
    record keeps ``now`` after the times that still count. Costs one step per time forgotten.
    """
    stale = 0
    while stale < len(times) and now - times[stale] >= policy.window_s:
        stale += 1
    return stale, len(times) - stale + 1 >= policy.strikes


class PeerConduct:
    """Recent strikes per peer, and the peers cut off until when (``strike`` decides).

    Memory is bounded by ``policy.max_tracked`` peers for strikes and as many for bans, each
    holding fewer than ``policy.strikes`` times.
    """

    def __init__(self, policy: ConductPolicy | None = None) -> None:
        self.policy = policy or PEER_CONDUCT
        self._strikes: OrderedDict[str, deque[float]] = OrderedDict()
        self._banned: OrderedDict[str, float] = OrderedDict()

    def strike(self, peer: str, now: float) -> bool:
        """Record one refusal of ``peer``; return True when it cuts the peer off now."""
        policy = self.policy
        if self.banned_for(peer, now) > 0:
            return False
        times = self._strikes.pop(peer, None) or deque()
        stale, cut = strike(times, now, policy)
        for _ in range(stale):
            times.popleft()
        if not cut:
            times.append(now)
            self._strikes[peer] = times
            _trim(self._strikes, policy.max_tracked)
            return False
        self._banned.pop(peer, None)
        self._banned[peer] = now + policy.cool_down_s
        _trim(self._banned, policy.max_tracked)
        return True

    def banned_for(self, peer: str, now: float) -> float:
        """Return how many seconds ``peer`` is still refused for (0 when it is not)."""
        until = self._banned.get(peer)
        if until is None:
            return 0.0
        if until <= now:
            del self._banned[peer]
            return 0.0
        return until - now

    def banned(self, now: float) -> int:
        """Return how many peers are cut off now."""
        return sum(1 for until in self._banned.values() if until > now)


def _trim(entries: OrderedDict[str, Any], size: int) -> None:
    while len(entries) > size:
        entries.popitem(last=False)
