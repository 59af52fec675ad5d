"""Helpers for the multi-process router tests: metrics polling and bounded waits."""

import re
import time
import urllib.request
from collections.abc import Callable

import pytest
import trio
from libp2p.peer.id import ID

from offchain.crypto.keys import generate_keypair
from offchain.net.host import identity_from_seed
from offchain.net.identity import encode_endorsed_binding, make_endorsed_binding
from offchain.net.messages import Summary
from offchain.net.spawn import AgentProcess, seed_hex


def eth_address(label: str) -> str:
    """Return the Ethereum address an agent started with ``seed_hex(label)`` binds to."""
    return generate_keypair(bytes.fromhex(seed_hex(label))).address


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
    started = trio.current_time()
    with trio.move_on_after(timeout_s):
        while True:
            if await trio.to_thread.run_sync(check):
                return trio.current_time() - started
            await trio.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


def wait_until_sync(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Blocking form of ``wait_until`` for fixtures."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


class MeshKeys:
    """A router's libp2p and Ethereum keys and its endorsed binding, for mesh tests."""

    def __init__(self, label: bytes, ttl_s: int = 3_600) -> None:
        self.libp2p = identity_from_seed(label.ljust(32, b"\x00"))
        self.peer = ID.from_pubkey(self.libp2p.public_key).to_string()
        self.eth = generate_keypair(label)
        self.binding = encode_endorsed_binding(
            make_endorsed_binding(self.eth, self.libp2p.private_key, self.peer, ttl_s)
        )

    def summary(self, seq: int = 1, **workloads: int) -> Summary:
        return Summary(self.peer, seq, {"12D3KooWother": 1_500}, dict(workloads) or {"mm": 900})
