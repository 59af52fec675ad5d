"""How many examples the fuzz tests draw: a fixed number in CI, many more under --runslow.

Hypothesis draws them afresh each run (it replays only failures it has saved locally).
"""

import os

# The factor a --runslow run multiplies every fuzz test's example count by.
SLOW_FACTOR = 50


def examples(ci: int) -> int:
    """Return the examples to draw: ``ci`` in a normal run, ``SLOW_FACTOR`` times that slow."""
    return ci * SLOW_FACTOR if os.environ.get("EMC_RUNSLOW") == "1" else ci
