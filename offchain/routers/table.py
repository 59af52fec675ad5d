"""The routing table: a pure state machine of a router's compute nodes, and node scoring.

Every function takes the table (and the time and random source it needs) and returns a new
table or a decision; nothing here does I/O, so tests drive it directly.
"""

import bisect
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import immutables

# Scoring constants (milliseconds unless named otherwise).
DEFAULT_RTT_MS = 5.0
DEFAULT_SERVICE_MS = 10.0
EWMA_ALPHA = 0.2
# Unstaked nodes take only short tasks, one at a time, with a gap between them.
UNSTAKED_MAX_TIMEOUT_MS = 5_000
UNSTAKED_GAP_S = 1.0
TIE_EPSILON_MS = 1e-6
# With more candidates than this, ``choose`` scores a random sample of this many instead of
# all of them ("power of d choices"): O(d) per request on a router holding thousands of
# nodes, with a load spread close to the full scan's (docs/decisions.md).
SAMPLE_SIZE = 16
# What an unstaked node may declare: at most this many workloads, and a name no node serves yet
# only while the table holds fewer names than the cap. Staked nodes are not capped (their
# stake is the cost), so unstaked ones can neither blow up the table's index (copied on every
# join) nor crowd staked workloads out of the router's summary.
UNSTAKED_MAX_WORKLOADS = 8
UNSTAKED_MAX_NAMES = 1_024


class UnknownNode(KeyError):
    """An operation named a node that is not in the table."""


@dataclass(frozen=True)
class NodeEntry:
    """What a router knows about one connected compute node."""

    peer_id: str
    workloads: frozenset[str]
    e_power: int
    capacity: int
    staked: bool
    address: str = ""
    queue_depth: int = 0
    in_flight: int = 0
    rtt_ms: float = DEFAULT_RTT_MS
    service_ms: float = DEFAULT_SERVICE_MS
    successes: int = 0
    failures: int = 0
    last_task_at: float = float("-inf")


@dataclass(frozen=True)
class RoutingTable:
    """The router's nodes by peer id, with an index of the nodes serving each workload."""

    # A persistent map: a changed node costs O(log n), not a copy of every node on each task
    # start, finish and pong (docs/decisions.md).
    nodes: Mapping[str, NodeEntry] = field(default_factory=immutables.Map)
    # Sorted peer ids per workload: deterministic under a seeded random source, and O(1) to
    # sample from. Changes only when a node joins or leaves.
    by_workload: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


def add_node(table: RoutingTable, entry: NodeEntry) -> RoutingTable:
    """Return the table with ``entry`` added (replacing any entry for the same peer)."""
    if entry.capacity < 1:
        raise ValueError("capacity must be at least 1")
    if entry.peer_id in table.nodes:
        table = remove_node(table, entry.peer_id)
    index = dict(table.by_workload)
    for workload in entry.workloads:
        peers = list(index.get(workload, ()))
        bisect.insort(peers, entry.peer_id)
        index[workload] = tuple(peers)
    return RoutingTable(_nodes(table).set(entry.peer_id, entry), MappingProxyType(index))


def remove_node(table: RoutingTable, peer_id: str) -> RoutingTable:
    """Return the table without ``peer_id`` (unchanged if it is not there)."""
    entry = table.nodes.get(peer_id)
    if entry is None:
        return table
    index = dict(table.by_workload)
    for workload in entry.workloads:
        rest = tuple(p for p in index.get(workload, ()) if p != peer_id)
        if rest:
            index[workload] = rest
        else:
            index.pop(workload, None)
    return RoutingTable(_nodes(table).delete(peer_id), MappingProxyType(index))


def _update(table: RoutingTable, peer_id: str, **changes: object) -> RoutingTable:
    entry = table.nodes.get(peer_id)
    if entry is None:
        raise UnknownNode(peer_id)
    updated = replace(entry, **changes)  # type: ignore[arg-type]
    # Membership unchanged: share the index.
    return RoutingTable(_nodes(table).set(peer_id, updated), table.by_workload)


def _nodes(table: RoutingTable) -> immutables.Map:
    nodes = table.nodes
    return nodes if isinstance(nodes, immutables.Map) else immutables.Map(nodes)


def report_load(table: RoutingTable, peer_id: str, queue_depth: int) -> RoutingTable:
    """Return the table with the node's self-reported queue depth."""
    if queue_depth < 0:
        raise ValueError("queue depth must be non-negative")
    return _update(table, peer_id, queue_depth=queue_depth)


def set_staked(table: RoutingTable, peer_id: str, staked: bool) -> RoutingTable:
    """Return the table with the node's stake as the router's stake view now sees it."""
    return _update(table, peer_id, staked=staked)


def record_rtt(table: RoutingTable, peer_id: str, rtt_ms: float) -> RoutingTable:
    """Return the table with a new RTT sample folded into the node's moving average."""
    if rtt_ms < 0:
        raise ValueError("rtt must be non-negative")
    entry = table.nodes.get(peer_id)
    if entry is None:
        raise UnknownNode(peer_id)
    return _update(table, peer_id, rtt_ms=_ewma(entry.rtt_ms, rtt_ms))


def record_pong(table: RoutingTable, peer_id: str, rtt_ms: float, queue_depth: int) -> RoutingTable:
    """Return the table with one ping's RTT sample and the queue depth its pong reported."""
    if rtt_ms < 0 or queue_depth < 0:
        raise ValueError("rtt and queue depth must be non-negative")
    entry = table.nodes.get(peer_id)
    if entry is None:
        raise UnknownNode(peer_id)
    return _update(table, peer_id, rtt_ms=_ewma(entry.rtt_ms, rtt_ms), queue_depth=queue_depth)


def start_task(table: RoutingTable, peer_id: str, now: float) -> RoutingTable:
    """Return the table with one more task in flight on the node."""
    entry = table.nodes.get(peer_id)
    if entry is None:
        raise UnknownNode(peer_id)
    return _update(table, peer_id, in_flight=entry.in_flight + 1, last_task_at=now)


def finish_task(
    table: RoutingTable, peer_id: str, ok: bool, service_ms: float | None = None
) -> RoutingTable:
    """Return the table with the node's task finished (a no-op if the node has left)."""
    entry = table.nodes.get(peer_id)
    if entry is None:
        return table
    changes: dict[str, object] = {"in_flight": max(0, entry.in_flight - 1)}
    if ok:
        changes["successes"] = entry.successes + 1
        if service_ms is not None and service_ms >= 0:
            changes["service_ms"] = _ewma(entry.service_ms, service_ms)
    else:
        changes["failures"] = entry.failures + 1
    return _update(table, peer_id, **changes)


def _ewma(old: float, sample: float) -> float:
    return (1 - EWMA_ALPHA) * old + EWMA_ALPHA * sample


def expected_ms(entry: NodeEntry) -> float:
    """Return the node's expected completion time for one more task, in milliseconds.

    RTT plus the service time scaled by the work ahead of it (reported queue plus what this
    router has in flight there, over the node's parallel capacity), inflated by its failure
    rate so that a flaky node loses to a sound one of equal speed.
    """
    waiting = (entry.queue_depth + entry.in_flight) / entry.capacity
    failure_rate = entry.failures / (entry.successes + entry.failures + 1)
    return (entry.rtt_ms + entry.service_ms * (1.0 + waiting)) * (1.0 + 4.0 * failure_rate)


def eligible(entry: NodeEntry, workload: str, timeout_ms: int, now: float) -> bool:
    """Return whether the node may take a ``workload`` task with that time budget now."""
    if workload not in entry.workloads:
        return False
    if entry.in_flight >= entry.capacity:
        return False
    if entry.staked:
        return True
    # Unstaked nodes: short tasks only, one at a time, spaced out.
    return (
        timeout_ms <= UNSTAKED_MAX_TIMEOUT_MS
        and entry.in_flight == 0
        and now - entry.last_task_at >= UNSTAKED_GAP_S
    )


def choose(
    table: RoutingTable,
    workload: str,
    rng: random.Random,
    now: float,
    timeout_ms: int = 0,
    exclude: Iterable[str] = (),
) -> str | None:
    """Return the eligible node with the least expected completion time (ties at random).

    Over more than ``2 * SAMPLE_SIZE`` candidates, the best of ``SAMPLE_SIZE`` drawn at
    random, falling back to all of them when none drawn is eligible.
    """
    excluded = set(exclude)
    peers = table.by_workload.get(workload, ())
    if len(peers) > 2 * SAMPLE_SIZE:
        best = _best(table, rng.sample(peers, SAMPLE_SIZE), workload, now, timeout_ms, excluded)
        if best:
            return best[0] if len(best) == 1 else rng.choice(sorted(best))
    best = _best(table, peers, workload, now, timeout_ms, excluded)
    if not best:
        return None
    return best[0] if len(best) == 1 else rng.choice(best)


def _best(
    table: RoutingTable,
    peers: Iterable[str],
    workload: str,
    now: float,
    timeout_ms: int,
    excluded: set[str],
) -> list[str]:
    """Return the eligible peers among ``peers`` that share the least expected time."""
    best: list[str] = []
    best_score = float("inf")
    for peer_id in peers:
        if peer_id in excluded:
            continue
        entry = table.nodes[peer_id]
        if not eligible(entry, workload, timeout_ms, now):
            continue
        score = expected_ms(entry)
        if score < best_score - TIE_EPSILON_MS:
            best, best_score = [peer_id], score
        elif score <= best_score + TIE_EPSILON_MS:
            best.append(peer_id)
    return best


def serves(table: RoutingTable, workload: str) -> bool:
    """Return whether any connected node serves ``workload``."""
    return bool(table.by_workload.get(workload))


def admissible_workloads(
    table: RoutingTable, workloads: Iterable[str], staked: bool
) -> frozenset[str]:
    """Return the workloads a joining node is listed for: all of a staked node's, else capped.

    An unstaked node keeps at most ``UNSTAKED_MAX_WORKLOADS`` of its names (those already
    served first, then in name order), and a name new to the table only while the table holds
    fewer than ``UNSTAKED_MAX_NAMES``.
    """
    if staked:
        return frozenset(workloads)
    names = sorted(set(workloads), key=lambda name: (name not in table.by_workload, name))
    room = UNSTAKED_MAX_NAMES - len(table.by_workload)
    kept: list[str] = []
    for name in names:
        if len(kept) == UNSTAKED_MAX_WORKLOADS:
            break
        if name not in table.by_workload:
            if room <= 0:
                continue
            room -= 1
        kept.append(name)
    return frozenset(kept)


def best_expected_by_workload(table: RoutingTable, limit: int | None = None) -> dict[str, float]:
    """Return, per workload, the best expected completion time among staked-or-not nodes.

    With ``limit``, only that many workloads: those a staked node serves first, then the
    fastest, then by name, so a summary always fits what neighbours accept.
    """
    ranked: list[tuple[bool, float, str]] = []
    for workload, peers in table.by_workload.items():
        entries = [table.nodes[p] for p in peers]
        best = min(expected_ms(e) for e in entries)
        ranked.append((not any(e.staked for e in entries), best, workload))
    if limit is not None and len(ranked) > limit:
        ranked = sorted(ranked)[:limit]
    return {workload: best for _unstaked, best, workload in ranked}
