"""The router's configuration."""

from dataclasses import dataclass, field

from offchain.net.conduct import PEER_CONDUCT


@dataclass(frozen=True)
class RouterConfig:
    """Everything a router agent needs to start."""

    listen: str = "/ip4/127.0.0.1/tcp/0"
    # 64 hex digits: the libp2p identity seed, and the Ethereum key seed (random when unset).
    identity_seed: str | None = None
    eth_key_seed: str | None = None
    # Other routers to dial and keep mesh links with (multiaddrs ending in /p2p/<id>).
    peers: list[str] = field(default_factory=list)
    # Addresses taken as staked compute nodes, and as staked routers (only staked routers may be
    # mesh neighbours or the origin of a summary we take): the whole view without a chain, an
    # allow-list beside it with one (tests, offline use).
    staked: list[str] = field(default_factory=list)
    staked_routers: list[str] = field(default_factory=list)
    # Addresses taken as staked validators (they may join gossip), as ``staked_routers``.
    staked_validators: list[str] = field(default_factory=list)
    # Read stake from the Staking contract (Staking.is_active) through this JSON-RPC endpoint:
    # the contracts of the deployments/<deployment>.json record (or a path to a .json record),
    # on a chain that must have ``chain_id`` when it is set.
    chain_rpc: str | None = None
    deployment: str = "local"
    chain_id: int | None = None
    # The chain view reads the Staking events this often and re-reads the addresses they name
    # (0: no events), re-reads every address it tracks every ``stake_refresh_s`` (the safety net
    # for reorganisations and missed logs), and tracks at most ``stake_max_tracked`` (address,
    # role) pairs, the least recently asked evicted first.
    stake_follow_s: float = 1.0
    # Serve signed invocation orders only, checked against the ComputeMarket of the chain above
    # (``routers/invocations.py``): needs ``chain_rpc``. Off, requests are routed unchecked and
    # nothing is billed (a network without a chain). Each signer may send ``invocation_rate_per_s``
    # orders a second, ``invocation_burst`` at once.
    check_invocations: bool = False
    invocation_rate_per_s: float = 200.0
    invocation_burst: int = 400
    stake_refresh_s: float = 60.0
    stake_max_tracked: int = 16_384
    max_connections: int = 4_096
    max_in_flight: int = 2_048
    request_timeout_s: float = 30.0
    read_timeout_s: float = 5.0
    hello_timeout_s: float = 5.0
    ping_interval_s: float = 5.0
    # With many nodes the ping period stretches so pings stay under this rate, up to the cap.
    max_pings_per_s: float = 50.0
    max_ping_interval_s: float = 20.0
    summary_interval_s: float = 1.0
    # Messages a second a mesh neighbour may send, beyond 4 a summary interval for each origin
    # we know: faster is a flood, dropped and counted against it (``mesh.flood_rate``).
    mesh_rate_per_s: float = 500.0
    # Run gossipsub (records and other network-wide topics) with the mesh routers and with
    # peers that join bound to a staked validator or router; never with anyone else.
    gossip: bool = True
    # Gossip messages accepted per forwarding peer and topic: sustained rate and burst.
    gossip_rate_per_s: float = 2_000.0
    gossip_burst: int = 4_000
    # A peer refused this many times within a minute (malformed input and the like) is
    # disconnected and refused for ``cool_down_s`` (``net/boundary.py``).
    strikes: int = PEER_CONDUCT.strikes
    cool_down_s: float = PEER_CONDUCT.cool_down_s
    # A source IP address from which this many peers were cut off within a minute is refused new
    # connections, before any handshake, for ``cool_down_s`` (0: never).
    source_cut_offs: int = 3
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    ready_file: str | None = None
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        for name in ("request_timeout_s", "read_timeout_s", "hello_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        rates = (self.ping_interval_s, self.summary_interval_s, self.max_pings_per_s)
        if min(*rates, self.mesh_rate_per_s) <= 0:
            raise ValueError("intervals and rates must be positive")
        if self.gossip_rate_per_s <= 0 or self.gossip_burst < 1:
            raise ValueError("gossip_rate_per_s and gossip_burst must be positive")
        if self.stake_refresh_s <= 0 or self.stake_max_tracked < 1:
            raise ValueError("stake_refresh_s and stake_max_tracked must be positive")
        if self.stake_follow_s < 0:
            raise ValueError("stake_follow_s must not be negative (0: no events)")
        if self.check_invocations and self.chain_rpc is None:
            raise ValueError("check_invocations needs chain_rpc: orders are checked on a chain")
        if self.invocation_rate_per_s <= 0 or self.invocation_burst < 1:
            raise ValueError("invocation_rate_per_s and invocation_burst must be positive")
        if self.max_ping_interval_s < self.ping_interval_s:
            raise ValueError("max_ping_interval_s must be at least ping_interval_s")
