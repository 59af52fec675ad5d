"""The router mesh: summaries, loop-free shortest-path forwarding, and neighbours' conduct.

Pure: the agent feeds summaries and measured link RTTs in, and asks for the next hop. The
agent verifies each summary's signature (``signing.py``) before it reaches this module, and
reports each refused one here (``record_refusal``) to learn whether to cut its neighbour off.
"""

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar

from offchain.net.conduct import PEER_CONDUCT, ConductPolicy, strike
from offchain.protocol.wire import MAX_PEERS_IN_SUMMARY, Summary
from offchain.routers import signing

SUMMARY_TTL_S = 10.0
MAX_HOPS = 4
# Origins whose highest sequence number we remember after their summary is forgotten.
MAX_REMEMBERED = 4_096

# A neighbour that relays ``strikes`` summaries refused as evidence of misbehaviour within the
# window is cut off (the rule of ``net/conduct.py``): its mesh links are closed, and it may not
# link again (by peer id or by address) until the cool-down has passed. Strikes and window are
# the stream boundary's (``PEER_CONDUCT``); the cool-down is twice as long, and no flag sets
# it, because only proof counts here: an honest neighbour never sends a summary refused as
# ``EVIDENCE``, while the boundary refuses any malformed input, which a peer running other
# software may send in good faith. The ban also takes the neighbour's staked address, so a new
# peer id does not shorten it.
MESH_CONDUCT = replace(PEER_CONDUCT, cool_down_s=600.0)
# Which refusals count against the neighbour that sent the summary. A router verifies every
# summary before it takes or relays it, and relays the origin's bytes unchanged, so an honest
# neighbour never sends one that is malformed, cut short, without a binding or with a forged
# one, bound to another peer, unrecoverable or altered: those are evidence. The others can come
# from an honest neighbour: a binding that expired between its check and ours (or by a clock
# ahead of its), and an origin it knows as a staked router and we do not (stake views change at
# different moments). Duplicates and stale sequence numbers, which gossip redundancy and
# replays deliver all the time, are not refusals at all: they are dropped on ``seq`` before any
# check and never reach this score, unless they come faster than any honest neighbour sends
# (``MESH_FLOOD``, once per second of it).
MESH_FLOOD = "mesh-flood"
EVIDENCE = frozenset(
    {
        MESH_FLOOD,
        signing.MALFORMED,
        signing.BAD_SIGNATURE_LENGTH,
        signing.NO_BINDING,
        signing.BAD_BINDING,
        signing.ORIGIN_MISMATCH,
        signing.BAD_SIGNATURE,
        signing.WRONG_SIGNER,
    }
)
BENIGN = frozenset({signing.EXPIRED_BINDING, signing.UNSTAKED_ORIGIN})

_V = TypeVar("_V")


@dataclass(frozen=True)
class PeerSummary:
    """A summary received from a router, with the time it arrived."""

    summary: Summary
    received_at: float


@dataclass(frozen=True)
class MeshState:
    """A router's view of the mesh: its measured links and the summaries it holds.

    ``seen`` keeps the highest sequence number accepted from each origin, even after its
    summary is forgotten, so an old signed summary replayed later is still refused.
    """

    me: str
    links: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    summaries: Mapping[str, PeerSummary] = field(default_factory=lambda: MappingProxyType({}))
    seen: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Conduct:
    """Recent evidence against each mesh neighbour, and who is cut off until when.

    ``strikes`` holds, per neighbour peer id, the times of its refusals in ``EVIDENCE`` within
    the last ``policy.window_s``; ``policy.strikes`` of them cut it off. ``banned`` holds, per
    peer id and per address, the time its cool-down ends. Each holds at most
    ``policy.max_tracked`` keys, the least recently changed forgotten first. Times are
    monotonic seconds.
    """

    policy: ConductPolicy = MESH_CONDUCT
    strikes: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: MappingProxyType({}))
    banned: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Route:
    """Where to send a request: the next hop, the router that serves it, and the cost."""

    next_hop: str
    destination: str
    cost_ms: float


def set_link(state: MeshState, router: str, rtt_ms: float | None) -> MeshState:
    """Return the state with our measured RTT to ``router`` (None: the link is down)."""
    links = dict(state.links)
    if rtt_ms is None:
        links.pop(router, None)
    else:
        links[router] = rtt_ms
    return replace(state, links=MappingProxyType(links))


def is_newer(state: MeshState, summary: Summary) -> bool:
    """Return whether ``summary`` is another router's, newer than any we accepted from it."""
    if summary.router == state.me:
        return False
    return summary.seq > state.seen.get(summary.router, -1)


def accept_summary(state: MeshState, summary: Summary, now: float) -> MeshState:
    """Return the state with ``summary`` recorded, unless it is ours or not newer (a replay)."""
    if not is_newer(state, summary):
        return state
    summaries = dict(state.summaries)
    summaries[summary.router] = PeerSummary(summary, now)
    seen = dict(state.seen)
    seen.pop(summary.router, None)
    seen[summary.router] = summary.seq
    if len(seen) > MAX_REMEMBERED:
        # Forget the least recently updated origins, never one whose summary we still hold.
        for name in [k for k in seen if k not in summaries][: len(seen) - MAX_REMEMBERED]:
            del seen[name]
    return replace(state, summaries=MappingProxyType(summaries), seen=MappingProxyType(seen))


def forget_router(state: MeshState, router: str) -> MeshState:
    """Return the state without ``router``'s link or summary (its sequence number is kept)."""
    links = {k: v for k, v in state.links.items() if k != router}
    summaries = {k: v for k, v in state.summaries.items() if k != router}
    return replace(state, links=MappingProxyType(links), summaries=MappingProxyType(summaries))


def make_summary(
    me: str, seq: int, links: Mapping[str, float], expected: Mapping[str, float]
) -> Summary:
    """Return our summary: link RTTs and best expected time per workload, in microseconds.

    Capped to what a neighbour accepts (``MAX_PEERS_IN_SUMMARY`` each): the fastest links, and
    the workloads in the order ``expected`` gives (``table.best_expected_by_workload`` ranks
    staked workloads first), so our own summary can never be refused as malformed.
    """
    fastest = sorted(links.items(), key=lambda item: (item[1], item[0]))[:MAX_PEERS_IN_SUMMARY]
    first = list(expected.items())[:MAX_PEERS_IN_SUMMARY]
    return Summary(
        router=me,
        seq=seq,
        links={k: int(v * 1_000) for k, v in sorted(fastest)},
        workloads={k: int(v * 1_000) for k, v in sorted(first)},
    )


def next_hop(
    state: MeshState, workload: str, now: float, visited: Iterable[str] = ()
) -> Route | None:
    """Return the cheapest route to a router serving ``workload``, avoiding visited routers.

    The cost of a route is the sum of link RTTs along it plus the destination's advertised
    expected completion time. Routers in ``visited`` (and this one) are never entered, so a
    forwarded request cannot loop; paths are limited to ``MAX_HOPS`` routers.
    """
    banned = set(visited) | {state.me}
    fresh = {
        name: held.summary
        for name, held in state.summaries.items()
        if now - held.received_at <= SUMMARY_TTL_S and name not in banned
    }
    # Dijkstra from us over our measured links and the links others report.
    dist: dict[str, float] = {state.me: 0.0}
    first: dict[str, str] = {}
    hops: dict[str, int] = {state.me: 0}
    heap: list[tuple[float, str]] = [(0.0, state.me)]
    while heap:
        d, node = heapq.heappop(heap)
        if d > dist.get(node, float("inf")):
            continue
        if hops[node] >= MAX_HOPS:
            continue
        if node == state.me:
            edges = dict(state.links)
        else:
            edges = {k: v / 1_000 for k, v in fresh[node].links.items()}
        for neighbour, rtt in sorted(edges.items()):
            if neighbour in banned or neighbour not in fresh:
                continue
            nd = d + rtt
            if nd < dist.get(neighbour, float("inf")):
                dist[neighbour] = nd
                first[neighbour] = neighbour if node == state.me else first[node]
                hops[neighbour] = hops[node] + 1
                heapq.heappush(heap, (nd, neighbour))
    best: Route | None = None
    for router, d in sorted(dist.items()):
        if router == state.me:
            continue
        advertised = fresh[router].workloads.get(workload)
        if advertised is None:
            continue
        cost = d + advertised / 1_000
        if best is None or cost < best.cost_ms:
            best = Route(first[router], router, cost)
    return best


def flood_rate(base_per_s: float, origins: int, summary_interval_s: float) -> float:
    """Return the messages a second beyond which a mesh neighbour is flooding.

    An honest neighbour sends a ping, a pong and its own summary each interval, and relays each
    origin's fresh summary at most once per interval; ``base_per_s`` covers neighbours with a
    shorter interval than ours, and the factor 4 covers bursts of relays.
    """
    return base_per_s + 4 * origins / summary_interval_s


# What ``allow`` decides about a message from a mesh neighbour.
READ = "read"
DROP = "drop"
# Dropped, and held against the neighbour: once per ``FLOOD_NOTE_S`` of flooding.
DROP_AS_EVIDENCE = "drop-as-evidence"
FLOOD_NOTE_S = 1.0


@dataclass(frozen=True)
class Allowance:
    """What one mesh link's neighbour may still send: a token bucket, and its last flood noted.

    Full to start with (``tokens`` infinite, capped at the burst on the first message).
    """

    last: float
    tokens: float = math.inf
    noted: float = -math.inf


def allow(allowance: Allowance, rate: float, now: float) -> tuple[Allowance, str]:
    """Return the allowance after a neighbour's message at ``now``, and what to do with it.

    The neighbour may send ``rate`` messages a second (``flood_rate``), in bursts of twice
    that. Beyond it the message is dropped unread (``DROP``); the first dropped in each
    ``FLOOD_NOTE_S`` is also evidence against the neighbour (``DROP_AS_EVIDENCE``).
    """
    burst = int(2 * rate)
    tokens = min(burst, allowance.tokens + (now - allowance.last) * rate)
    if tokens >= 1:
        return Allowance(now, tokens - 1, allowance.noted), READ
    if now - allowance.noted >= FLOOD_NOTE_S:
        return Allowance(now, tokens, now), DROP_AS_EVIDENCE
    return Allowance(now, tokens, allowance.noted), DROP


def is_admission_evidence(reason: str) -> bool:
    """Return whether a mesh link refused for ``reason`` counts against the peer that asked.

    The summaries' evidence, and a peer presenting our own summary as its own.
    """
    return reason in EVIDENCE or reason == signing.NOT_OWN_SUMMARY


def is_evidence(reason: str) -> bool:
    """Return whether a summary refused for ``reason`` counts against the neighbour that sent it."""
    return reason in EVIDENCE


def record_refusal(
    conduct: Conduct, neighbour: str, address: str, reason: str, now: float
) -> tuple[Conduct, bool]:
    """Return the conduct after ``neighbour`` sent a refused summary, and whether to cut it off.

    ``reason`` is the refusal's; a benign one changes nothing, and neither does one from a
    neighbour already cut off. Otherwise it is a strike (``net/conduct.strike``): on the
    ``policy.strikes``-th within ``policy.window_s`` the neighbour's strikes are cleared and its
    peer id and ``address`` (the one it is bound to) are banned for ``policy.cool_down_s``.
    Strikes of neighbours quiet for the window, and bans that ended, are forgotten.
    """
    if not is_evidence(reason) or cool_down_left(conduct, neighbour, now) > 0:
        return conduct, False
    policy = conduct.policy
    strikes = {
        peer: times
        for peer, times in conduct.strikes.items()
        if peer != neighbour and now - times[-1] < policy.window_s
    }
    held = conduct.strikes.get(neighbour, ())
    stale, cut = strike(held, now, policy)
    if not cut:
        strikes[neighbour] = (*held[stale:], now)
        strikes = _newest(strikes, policy.max_tracked)
        return replace(conduct, strikes=MappingProxyType(strikes)), False
    banned = {
        key: until
        for key, until in conduct.banned.items()
        if until > now and key not in (neighbour, address)
    }
    until = now + policy.cool_down_s
    banned[neighbour] = until
    if address:
        banned[address] = until
    banned = _newest(banned, policy.max_tracked)
    return (
        replace(conduct, strikes=MappingProxyType(strikes), banned=MappingProxyType(banned)),
        True,
    )


def cool_down_left(conduct: Conduct, key: str, now: float) -> float:
    """Return the seconds the neighbour with peer id or address ``key`` is still refused for."""
    return max(0.0, conduct.banned.get(key, now) - now)


def _newest(entries: dict[str, _V], size: int) -> dict[str, _V]:
    """Return ``entries`` without its oldest beyond ``size`` (in insertion order)."""
    if len(entries) <= size:
        return entries
    return dict(list(entries.items())[-size:])
