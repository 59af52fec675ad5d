"""A record of refusals per key (a peer id, a source address) and who is refused until when.

Pure apart from the times passed in; memory is bounded by ``max_tracked`` keys for strikes and
as many for refusals, each holding at most ``strikes`` times.
"""

from collections import OrderedDict, deque
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


class PeerConduct:
    """Recent refusals per peer, and the peers cut off until when (monotonic seconds).

    Memory is bounded by ``policy.max_tracked`` peers for strikes and as many for bans, each
    holding at most ``policy.strikes`` times.
    """

    def __init__(self, policy: ConductPolicy | None = None) -> None:
        self.policy = policy or ConductPolicy()
        self._strikes: OrderedDict[str, deque[float]] = OrderedDict()
        self._banned: OrderedDict[str, float] = OrderedDict()

    def strike(self, peer: str, now: float) -> bool:
        """Record one refusal of ``peer``; return True when it cuts the peer off now."""
        policy = self.policy
        if self.banned_for(peer, now) > 0:
            return False
        times = self._strikes.pop(peer, None) or deque(maxlen=policy.strikes)
        while times and now - times[0] >= policy.window_s:
            times.popleft()
        times.append(now)
        if len(times) < policy.strikes:
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
