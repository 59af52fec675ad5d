"""Helpers for the multi-process router tests: metrics polling and bounded waits."""

import re
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import multiaddr
import trio
from libp2p.abc import INetStream
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from offchain.chain.identity import encode_endorsed_binding, make_endorsed_binding
from offchain.crypto.keys import generate_keypair
from offchain.net.host import identity_from_seed, make_host
from offchain.net.limits import node_limits
from offchain.net.streams import NET_ERRORS
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.wire import SignedSummary, Summary, encode
from offchain.routers.signing import sign_summary
from offchain.runtime.spawn import AgentProcess, seed_hex
from tests import waiting


def eth_address(label: str) -> str:
    """Return the Ethereum address an agent started with ``seed_hex(label)`` binds to."""
    return generate_keypair(bytes.fromhex(seed_hex(label))).address


def one_link_echo_node(label: str) -> list[str]:
    """Return worker flags for an echo node keyed by ``label`` with one link and a quick
    relink (0.2 s backoff, capped at 1 s)."""
    return [
        "--links",
        "1",
        "--eth-key-seed",
        seed_hex(label),
        "--workload",
        "echo",
        "--backoff-initial",
        "0.2",
        "--backoff-max",
        "1",
    ]


def metric(process: AgentProcess, name: str, labels: str = "") -> float:
    """Return one sample from the agent's Prometheus endpoint (0.0 if absent)."""
    port = process.info["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    name, labels = (
        (name.split("{", 1)[0], "{" + name.split("{", 1)[1]) if "{" in name else (name, labels)
    )
    pattern = rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``check`` (run in a thread) until true; return the seconds it took, or fail."""
    return await waiting.wait_until(check, what, timeout_s, in_thread=True)


def wait_until_sync(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Blocking form of ``wait_until`` for fixtures."""
    waiting.wait_until_sync(check, what, timeout_s)


class MeshKeys:
    """A router's libp2p and Ethereum keys and its endorsed binding, for mesh tests."""

    def __init__(self, label: bytes, ttl_s: int = 3_600, eth_label: bytes | None = None) -> None:
        self.libp2p = identity_from_seed(label.ljust(32, b"\x00"))
        self.peer = ID.from_pubkey(self.libp2p.public_key).to_string()
        # ``eth_label``: another peer id bound to the address of that label's keys.
        self.eth = generate_keypair(eth_label or label)
        self.binding = encode_endorsed_binding(
            make_endorsed_binding(self.eth, self.libp2p.private_key, self.peer, ttl_s)
        )

    def summary(self, seq: int = 1, **workloads: int) -> Summary:
        return Summary(self.peer, seq, {"12D3KooWother": 1_500}, dict(workloads) or {"mm": 900})

    def signed(self, seq: int = 1, **workloads: int) -> SignedSummary:
        """Return this router's own summary, signed, with its binding."""
        return sign_summary(self.summary(seq, **workloads), self.eth, self.binding)


def agent_errors(agent, reason: str) -> float:
    """Return an in-process agent's ``emc_router_errors_total{reason}``."""
    value = agent.metrics.registry.get_sample_value("emc_router_errors_total", {"reason": reason})
    return value or 0.0


def mesh_links(agent, outcome: str) -> float:
    """Return an in-process router's ``emc_router_mesh_links_total{outcome}``."""
    value = agent.metrics.registry.get_sample_value(
        "emc_router_mesh_links_total", {"outcome": outcome}
    )
    return value or 0.0


@asynccontextmanager
async def mesh_peer(keys: MeshKeys, router_addr: str) -> AsyncIterator[Callable]:
    """Run a host with ``keys``' libp2p identity, connected to the router at ``router_addr``.

    Yields ``open_link(first)``: it opens a mesh stream to the router and writes ``first`` (a
    signed summary, the mesh stream's credentials; by default this router's own) on it. It
    returns the stream, or None if the router ended it at once (a refusal: the caller checks).
    """
    host = make_host(keys.libp2p, node_limits())
    info = info_from_p2p_addr(multiaddr.Multiaddr(router_addr))

    async def open_link(first: SignedSummary | None = None) -> INetStream | None:
        try:
            stream = await host.new_stream(info.peer_id, [protocols.MESH])
            await stream.write(encode(first or keys.signed(seq=time.time_ns())))
        except NET_ERRORS:
            return None
        return stream

    async with host.run([]):
        with trio.fail_after(10):
            await host.connect(info)
        yield open_link
