"""The libp2p host factory: TCP, Noise and Yamux only, with limits set for the agent's role."""

import logging
from collections.abc import Sequence

import multiaddr
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerstore import PeerStore
from libp2p.rcmgr import ResourceManager
from libp2p.rcmgr.connection_limits import ConnectionLimits
from libp2p.rcmgr.manager import ResourceLimits
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.transport.tcp.tcp import TCP

from offchain.net import libp2p_patches
from offchain.net.limits import HostLimits
from offchain.net.source_gate import GatedTCP, SourceGate

logger = logging.getLogger(__name__)

SECURITY_PROTOCOLS = (NOISE_PROTOCOL_ID,)
MUXER_PROTOCOLS = (YAMUX_PROTOCOL_ID,)


def identity_from_seed(seed: bytes | None = None) -> KeyPair:
    """Return a fresh Ed25519 libp2p key pair, or the one derived from a 32-byte ``seed``."""
    if seed is None:
        return create_new_key_pair()
    if len(seed) != 32:
        raise ValueError(f"libp2p identity seed must be 32 bytes, got {len(seed)}")
    return create_new_key_pair(seed)


def connection_config(limits: HostLimits) -> ConnectionConfig:
    """Return a connection manager config that never prunes below ``max_connections``."""
    return ConnectionConfig(
        max_connections=limits.max_connections,
        # No auto-connect: our agents decide whom to dial (nodes dial routers, never back).
        min_connections=0,
        low_watermark=0,
        high_watermark=limits.max_connections,
        max_connections_per_peer=limits.max_connections_per_peer,
        dial_timeout=limits.dial_timeout_s,
        inbound_upgrade_timeout=limits.upgrade_timeout_s,
        outbound_upgrade_timeout=limits.upgrade_timeout_s,
        inbound_stream_protocol_negotiation_timeout=limits.negotiate_timeout_s,
        outbound_stream_protocol_negotiation_timeout=limits.negotiate_timeout_s,
        auto_connect_interval=3_600.0,
    )


def resource_manager(limits: HostLimits) -> ResourceManager:
    """Return a resource manager whose caps match ``limits`` instead of the 256-inbound default."""
    conn_limits = ConnectionLimits(
        max_pending_inbound=limits.max_pending_inbound,
        max_pending_outbound=limits.max_pending_inbound,
        max_established_inbound=limits.max_connections,
        max_established_outbound=limits.max_connections,
        max_established_per_peer=max(8, limits.max_connections_per_peer),
        max_established_total=limits.max_connections,
    )
    return ResourceManager(
        limits=ResourceLimits(
            max_connections=limits.max_connections,
            max_memory_mb=limits.max_memory_mb,
            max_streams=limits.max_streams,
        ),
        connection_limits=conn_limits,
        enable_metrics=False,
    )


def make_host(key_pair: KeyPair, limits: HostLimits, gate: SourceGate | None = None) -> IHost:
    """Return a host that speaks only TCP + Noise + Yamux, with ``limits`` applied.

    With ``gate``, its listeners refuse the sources the gate refuses before any handshake.
    """
    security = {
        NOISE_PROTOCOL_ID: NoiseTransport(
            key_pair, noise_privkey=create_new_x25519_key_pair().private_key
        )
    }
    muxers = {TProtocol(YAMUX_PROTOCOL_ID): Yamux}
    host = new_host(
        key_pair=key_pair,
        sec_opt=security,
        muxer_opt=muxers,
        peerstore_opt=PeerStore(max_peers=limits.max_peers),
        connection_config=connection_config(limits),
        resource_manager=resource_manager(limits),
        transports=[GatedTCP(gate) if gate is not None else TCP()],
        negotiate_timeout=int(limits.negotiate_timeout_s),
    )
    # py-libp2p patches (offchain/net/libp2p_patches): each raises PatchError at once if the
    # library is not the version it was written for, or the patch did not take effect.
    libp2p_patches.apply_to_host(host, int(limits.negotiate_timeout_s))
    libp2p_patches.verify_host(host)
    logger.debug("host %s created (noise+yamux+tcp)", host.get_id())
    return host


def forget_failed_dials(host: IHost, peer_id: ID) -> None:
    """Let the next dial of ``peer_id`` go out even if all its addresses failed recently.

    py-libp2p 0.8.1 refuses to dial a peer for 60 s once every address of it has failed (the
    swarm's negative cache). Our dial loops pace themselves with their own backoff and jitter,
    so a router that restarts would otherwise leave its nodes unlinked for up to a minute.
    ``Swarm.unblock_peer`` is the library's own way to clear one peer (not on ``INetwork``).
    """
    network = host.get_network()
    if not isinstance(network, Swarm):
        raise TypeError(f"the host's network is a {type(network).__qualname__}, not a Swarm")
    network.unblock_peer(peer_id)


def loopback_listen_addr(port: int = 0, host: str = "127.0.0.1") -> multiaddr.Multiaddr:
    """Return the TCP listen multiaddr for ``host``:``port`` (port 0 picks a free one)."""
    return multiaddr.Multiaddr(f"/ip4/{host}/tcp/{port}")


def listen_addrs_of(host: IHost) -> Sequence[multiaddr.Multiaddr]:
    """Return the host's listen addresses with its /p2p/ peer id appended."""
    peer = host.get_id().to_string()
    out = []
    for addr in host.get_addrs():
        text = str(addr)
        out.append(multiaddr.Multiaddr(text if "/p2p/" in text else f"{text}/p2p/{peer}"))
    return out
