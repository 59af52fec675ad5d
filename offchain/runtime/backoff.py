"""The one backoff for redial loops: capped exponential, with jitter.

A node's links to routers and a router's mesh links both redial a peer that failed. Each wait
is drawn from [cap / 2, cap], where the cap doubles per failed attempt from ``initial_s`` up to
``max_s``: peers that lost the same router spread their redials over time instead of arriving
together, and none waits less than half its cap.
"""

import random
from dataclasses import dataclass, field

import trio


def backoff_delay(attempt: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Return the wait before retry ``attempt`` (0-based): capped exponential, jittered."""
    cap = min(max_s, initial_s * (2 ** min(attempt, 30)))
    return rng.uniform(cap / 2, cap)


@dataclass
class Backoff:
    """The retry state of one redial loop: ``wait`` after a failure, ``reset`` after a success."""

    initial_s: float = 0.5
    max_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")

    def next_delay(self) -> float:
        """Return the wait before the next retry, and count the attempt."""
        delay = backoff_delay(self.attempt, self.initial_s, self.max_s, self.rng)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from ``initial_s`` (the last try succeeded)."""
        self.attempt = 0

    async def wait(self) -> float:
        """Sleep the next delay; return it."""
        delay = self.next_delay()
        await trio.sleep(delay)
        return delay
