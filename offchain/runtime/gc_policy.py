"""Garbage collection for an agent that holds thousands of long-lived connections.

With CPython's default thresholds a router holding 2,000 nodes spent a fifth to a third of its
CPU collecting, and each full collection stalled every connection for up to seconds
(``docs/decisions.md``). Most of that was wasted: while nodes connect, nothing long-lived dies,
yet every 25 % of growth triggers a full pass over all of it. Only two things make cyclic
garbage worth a full pass here: connections that ended (py-libp2p's per-connection objects
form cycles through their tasks and nurseries), and time.

So an agent process raises the young generation's threshold (``tune_process``: temporaries of
a request die before they are ever promoted, and automatic full collections become rare), and
the agent asks ``ChurnCollector`` when to collect fully itself: once enough connections have
ended since the last full collection, or when ``max_interval_s`` has passed.
"""

import gc
from dataclasses import dataclass

# Young collections every 10,000 net container allocations instead of 700; the older
# generations' ratios stay at CPython's 10 and 10.
THRESHOLDS = (10_000, 10, 10)


def tune_process() -> None:
    """Set this process's collector thresholds for an agent with many connections."""
    gc.set_threshold(*THRESHOLDS)


@dataclass
class ChurnCollector:
    """When to run a full collection: after churn, or after a while (times in seconds)."""

    last_full: float
    min_ended: int = 256
    fraction: float = 0.25
    max_interval_s: float = 120.0
    ended: int = 0

    def note_ended(self, count: int = 1) -> None:
        """Count connections that ended: their objects now wait for a full collection."""
        self.ended += count

    def due(self, held: int, now: float) -> bool:
        """Return whether a full collection is due with ``held`` connections open."""
        enough = self.ended >= max(self.min_ended, self.fraction * held)
        return enough or now - self.last_full >= self.max_interval_s

    def collected(self, now: float) -> None:
        """Start counting again after a full collection at ``now``."""
        self.ended = 0
        self.last_full = now
