import random

import pytest
import trio

from offchain.runtime.backoff import Backoff, backoff_delay


def test_backoff_grows_to_its_cap_with_jitter_below_it():
    rng = random.Random(7)
    for attempt, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0), (500, 4.0)]:
        delays = [backoff_delay(attempt, 0.5, 4.0, rng) for _ in range(200)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert max(delays) - min(delays) > cap / 4  # jittered, not a fixed step


def test_backoff__grows_to_cap_with_jitter():
    backoff = Backoff(0.5, 4.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    for attempt, delay in enumerate(delays):
        cap = min(4.0, 0.5 * 2**attempt)
        assert cap / 2 <= delay <= cap
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not lockstep
    assert backoff_delay(10_000, 0.5, 4.0, random.Random(1)) <= 4.0


def test_backoff__reset__starts_again_from_the_initial_wait():
    backoff = Backoff(0.5, 4.0, random.Random(2))
    for _ in range(5):
        backoff.next_delay()
    assert backoff.next_delay() > 1.0
    backoff.reset()
    assert 0.25 <= backoff.next_delay() <= 0.5


def test_backoff__nonsense_bounds__refused():
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)


async def test_backoff__wait__sleeps_the_delay_it_returns(autojump_clock):
    backoff = Backoff(1.0, 8.0, random.Random(3))
    started = trio.current_time()
    delay = await backoff.wait()
    assert 0.5 <= delay <= 1.0
    assert trio.current_time() - started == pytest.approx(delay)
