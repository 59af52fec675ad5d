"""The fault boundary: a handler's exception ends one stream, refusals cut a peer off."""

import pytest
import trio
import trio.testing

from offchain.net.boundary import StreamGuard
from offchain.net.conduct import ConductPolicy, PeerConduct, strike
from offchain.net.host import identity_from_seed, make_host
from offchain.net.limits import node_limits
from offchain.protocol.errors import InputRejected
from offchain.runtime.metrics import make_metrics


def test_conduct__strikes_within_window__cut_off_for_cool_down() -> None:
    conduct = PeerConduct(ConductPolicy(strikes=3, window_s=10, cool_down_s=100))
    assert not conduct.strike("p", 0.0)
    assert not conduct.strike("p", 1.0)
    assert conduct.strike("p", 2.0)
    assert conduct.banned_for("p", 50.0) == pytest.approx(52.0)
    assert conduct.banned_for("p", 102.0) == 0.0
    assert conduct.banned_for("q", 0.0) == 0.0


def test_conduct__strikes_spread_beyond_window__never_cut_off() -> None:
    conduct = PeerConduct(ConductPolicy(strikes=3, window_s=10, cool_down_s=100))
    assert not any(conduct.strike("p", t * 6.0) for t in range(20))


def test_strike__counts_within_window__stale_times_forgotten() -> None:
    rule = ConductPolicy(strikes=3, window_s=10, cool_down_s=100)
    assert strike((), 0.0, rule) == (0, False)
    assert strike((0.0,), 5.0, rule) == (0, False)
    assert strike((0.0, 5.0), 9.9, rule) == (0, True)
    # Exactly window_s old no longer counts; the times are the caller's, untouched.
    assert strike((0.0, 5.0), 10.0, rule) == (1, False)
    assert strike((0.0, 5.0), 16.0, rule) == (2, False)
    assert strike((7.0,), 8.0, ConductPolicy(strikes=1)) == (0, True)


def test_conduct__cut_off_peer__not_struck_again_during_cool_down() -> None:
    conduct = PeerConduct(ConductPolicy(strikes=1, window_s=10, cool_down_s=5))
    assert conduct.strike("p", 0.0)
    assert not conduct.strike("p", 1.0)
    assert conduct.banned_for("p", 1.0) == 4.0
    assert conduct.strike("p", 5.0)


def test_conduct__many_peers__memory_bounded() -> None:
    conduct = PeerConduct(ConductPolicy(strikes=1, max_tracked=100))
    for i in range(1_000):
        conduct.strike(f"p{i}", 0.0)
    assert conduct.banned(0.0) == 100


class FakeStream:
    """Just enough of a stream for the guard: a peer id, and a record of resets."""

    def __init__(self, peer: str) -> None:
        self.muxed_conn = type(
            "Conn", (), {"peer_id": type("Id", (), {"to_string": lambda s: peer})()}
        )()
        self.reset_count = 0

    async def reset(self) -> None:
        self.reset_count += 1


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RecursionError("deep"), "internal-error"),
        (InputRejected("bad", "cbor-tag"), "cbor-tag"),
        (ExceptionGroup("nursery", [InputRejected("bad", "oversized")]), "oversized"),
        (KeyError("x"), "internal-error"),
    ],
)
async def test_guard__handler_raises__stream_reset_counted_nothing_escapes(
    error: Exception, reason: str
) -> None:
    metrics = make_metrics("router")
    host = make_host(identity_from_seed(b"\x01" * 32), node_limits())
    guard = StreamGuard(host, metrics, PeerConduct(ConductPolicy(strikes=2)))

    async def handler(_stream: object) -> None:
        raise error

    guarded = guard.guard("invoke", handler)
    stream = FakeStream("12D3KooWpeer")
    await guarded(stream)  # type: ignore[arg-type]
    assert stream.reset_count == 1
    assert metrics.rejected.labels(reason=reason)._value.get() == 1
    await guarded(stream)  # type: ignore[arg-type]
    # Refused input is evidence: the second one cuts the peer off; an internal error is not.
    cut = reason != "internal-error"
    assert (guard.banned_for("12D3KooWpeer") > 0) == cut
    assert metrics.cut_off._value.get() == (1 if cut else 0)
    if cut:
        await guarded(stream)  # type: ignore[arg-type]
        assert metrics.rejected.labels(reason="cooling-down")._value.get() == 1


async def test_guard__streams_per_peer__beyond_the_cap_refused() -> None:
    metrics = make_metrics("router")
    host = make_host(identity_from_seed(b"\x02" * 32), node_limits())
    guard = StreamGuard(host, metrics)
    release = trio.Event()

    async def handler(_stream: object) -> None:
        await release.wait()

    guarded = guard.guard("mesh", handler, max_per_peer=2)
    streams = [FakeStream("12D3KooWpeer") for _ in range(3)]
    async with trio.open_nursery() as nursery:
        for stream in streams[:2]:
            nursery.start_soon(guarded, stream)
        await trio.testing.wait_all_tasks_blocked()
        await guarded(streams[2])  # type: ignore[arg-type]
        assert streams[2].reset_count == 1
        assert metrics.rejected.labels(reason="too-many-streams")._value.get() == 1
        release.set()
    assert [s.reset_count for s in streams[:2]] == [0, 0]
