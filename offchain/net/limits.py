"""Connection, stream and peer-store limits for the agents' libp2p hosts.

py-libp2p 0.8.1's defaults break a router (DESIGN.md section 8): the connection manager keeps
at most 300 connections and prunes above 200, the automatic resource manager admits 256
inbound connections, and the peer store evicts beyond 1,000 peers, its own entry included.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class HostLimits:
    """The limits one host runs with."""

    max_connections: int
    max_streams: int
    max_memory_mb: int
    max_peers: int
    max_pending_inbound: int
    max_connections_per_peer: int = 3
    dial_timeout_s: float = 10.0
    upgrade_timeout_s: float = 10.0
    negotiate_timeout_s: float = 10.0


def router_limits(max_connections: int = 4_096) -> HostLimits:
    """Return limits for a router that holds up to ``max_connections`` compute nodes."""
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    return HostLimits(
        max_connections=max_connections,
        # Each node connection carries one link stream; callers' and mesh streams come on top.
        max_streams=max(10_000, 16 * max_connections),
        max_memory_mb=max(1_024, max_connections // 2),
        # Far above any connection count, and the router also forgets peers that leave.
        max_peers=max(100_000, 20 * max_connections),
        max_pending_inbound=512,
    )


def node_limits() -> HostLimits:
    """Return limits for a compute node or a caller, which dial a handful of routers."""
    return HostLimits(
        max_connections=64,
        max_streams=4_096,
        max_memory_mb=512,
        max_peers=10_000,
        max_pending_inbound=64,
    )
