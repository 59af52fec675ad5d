"""The router mesh: summaries gossiped by routers, and loop-free shortest-path forwarding.

Pure: the agent feeds summaries and measured link RTTs in, and asks for the next hop. The
agent verifies each summary's signature (``signing.py``) before it reaches this module.
"""

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from offchain.net.messages import Summary

SUMMARY_TTL_S = 10.0
MAX_HOPS = 4
# Origins whose highest sequence number we remember after their summary is forgotten.
MAX_REMEMBERED = 4_096


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
    """Return our summary: link RTTs and best expected time per workload, in microseconds."""
    return Summary(
        router=me,
        seq=seq,
        links={k: int(v * 1_000) for k, v in sorted(links.items())},
        workloads={k: int(v * 1_000) for k, v in sorted(expected.items())},
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
