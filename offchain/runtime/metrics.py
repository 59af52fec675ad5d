"""Prometheus metrics of an agent: connections, requests, latencies and errors."""

import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class AgentMetrics:
    """The metrics one agent exports, in a registry of its own."""

    registry: CollectorRegistry
    connections: Gauge
    nodes: Gauge
    requests: Counter
    errors: Counter
    latency: Histogram
    in_flight: Gauge
    gossip: Counter
    mesh_links: Counter
    # Input refused at the fault boundary, by reason (``net/boundary.py``), and the peers cut
    # off for repeated refusals. Named without the role: one name across every kind of agent.
    rejected: Counter
    cut_off: Counter
    # Routers only: how many of the linked compute nodes are staked, and the full garbage
    # collections the router runs itself (``gc_policy.ChurnCollector``).
    staked_nodes: Gauge | None = None
    mesh_peers: Gauge | None = None
    view_answers: Gauge | None = None
    full_collections: Histogram | None = None


def make_metrics(role: str) -> AgentMetrics:
    """Return a fresh set of metrics for an agent of ``role`` ("router" or "worker")."""
    registry = CollectorRegistry()
    prefix = f"emc_{role}"
    return AgentMetrics(
        registry=registry,
        connections=Gauge(f"{prefix}_connections", "Open libp2p connections", registry=registry),
        nodes=Gauge(f"{prefix}_nodes", "Compute nodes or routers linked", registry=registry),
        requests=Counter(
            f"{prefix}_requests", "Requests handled, by outcome", ["outcome"], registry=registry
        ),
        errors=Counter(
            f"{prefix}_errors",
            "Dropped streams and failures, by reason",
            ["reason"],
            registry=registry,
        ),
        latency=Histogram(
            f"{prefix}_request_seconds",
            "Request latency",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        in_flight=Gauge(f"{prefix}_in_flight", "Requests in flight", registry=registry),
        gossip=Counter(
            f"{prefix}_gossip",
            "Gossip messages, by topic and outcome (published, received, dropped)",
            ["topic", "outcome"],
            registry=registry,
        ),
        mesh_links=Counter(
            f"{prefix}_mesh_links",
            "Router mesh links, by outcome (admitted, refused, cut-off)",
            ["outcome"],
            registry=registry,
        ),
        rejected=Counter(
            "emc_rejected",
            "Input refused (malformed, oversized, unstaked, ...) by reason",
            ["reason"],
            registry=registry,
        ),
        cut_off=Counter(
            "emc_peers_cut_off",
            "Peers disconnected and refused for repeated refusals",
            registry=registry,
        ),
        staked_nodes=Gauge(
            f"{prefix}_staked_nodes", "Compute nodes linked that are staked", registry=registry
        )
        if role == "router"
        else None,
        mesh_peers=Gauge(
            f"{prefix}_mesh_peers", "Staked routers with a mesh link up now", registry=registry
        )
        if role == "router"
        else None,
        view_answers=Gauge(
            f"{prefix}_market_view_answers",
            "Market view answers so far: from memory (hit), or absent while not read (miss)",
            ["answer"],
            registry=registry,
        )
        if role == "router"
        else None,
        full_collections=Histogram(
            f"{prefix}_full_collection_seconds",
            "Full garbage collections run after connections ended or a while",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        if role == "router"
        else None,
    )


def serve_metrics(metrics: AgentMetrics, port: int, host: str = "127.0.0.1") -> int:
    """Start the Prometheus HTTP endpoint in a thread and return the port it listens on."""
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    bound = server.server_address[1]
    logger.info("metrics at http://%s:%d/metrics", host, bound)
    return int(bound)
