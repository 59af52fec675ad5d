"""Hostile peers against real agent processes: every bomb on every protocol, and nothing breaks.

A real ``emc router`` and a real ``emc worker`` run as processes on loopback. A hostile peer
process (``bench/hostile_peer.py``) sends every known bomb and random mutations of valid frames
on each protocol the router offers, changing identity each time it is cut off; a second one
poses as a router the worker links to and answers each link with a hostile frame. Afterwards
both agents are alive, their metrics count the refusals by reason, the hostile peers are cut
off, and an honest caller is still served by the honest node.
"""

import json
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import trio
from libp2p.peer.id import ID
from prometheus_client.parser import text_string_to_metric_families

from bench.hostile_peer import BOMBS, TO_NODE
from offchain.routers.router_client import caller, invoke
from offchain.runtime.spawn import AgentProcess, router_process, seed_hex, stop_all, worker_process
from tests.offchain.routers.routernet import eth_address, wait_until_sync

MUTATIONS = 4
# Every frame the fake router sends is one refusal by the node; the last one cuts it off.
FAKE_ROUTER_FRAMES = len(TO_NODE) * (len(BOMBS) + MUTATIONS)


def rejections(process: AgentProcess) -> tuple[Counter[str], float]:
    """Return the agent's ``emc_rejected_total`` by reason, and its peers cut off."""
    port = process.info["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    by_reason: Counter[str] = Counter()
    cut_off = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "emc_rejected_total":
                by_reason[sample.labels["reason"]] += sample.value
            elif sample.name == "emc_peers_cut_off_total":
                cut_off = sample.value
    return by_reason, cut_off


def hostile_process(workdir: Path, name: str, args: list[str]) -> AgentProcess:
    """Return (not started) a hostile peer process writing its report to ``<name>.report``."""
    argv = [sys.executable, "-m", "bench.hostile_peer", *args]
    argv += ["--report", str(workdir / f"{name}.report")]
    return AgentProcess(name, argv, workdir / f"{name}.json", workdir / f"{name}.log")


def report(workdir: Path, name: str) -> dict:
    """Return a finished hostile peer's report."""
    return json.loads((workdir / f"{name}.report").read_text())


def report_shows(workdir: Path, name: str, check) -> bool:
    """Return whether the hostile peer's report, rewritten as it goes, satisfies ``check``."""
    try:
        return check(report(workdir, name))
    except (OSError, json.JSONDecodeError):  # not written yet, or caught mid-write
        return False


@pytest.mark.timeout(240)
async def test_hostile_peers__every_bomb_on_every_protocol__agents_live_count_and_cut_off(
    tmp_path: Path,
) -> None:
    processes: list[AgentProcess] = []
    node_flags = [
        "--eth-key-seed",
        seed_hex("hostile-node"),
        "--workload",
        "echo",
        "--links",
        "2",
        "--backoff-initial",
        "0.05",
        "--backoff-max",
        "0.2",
        "--metrics-port",
        "0",
        "--strikes",
        str(FAKE_ROUTER_FRAMES),
    ]
    try:
        fake = hostile_process(
            tmp_path,
            "fake-router",
            ["fake-router", "--ready-file", str(tmp_path / "fake-router.json")]
            + ["--mutations", str(MUTATIONS)],
        ).start()
        processes.append(fake)
        fake.wait_ready()
        router = router_process(
            tmp_path,
            "router",
            # The source gate is off: the attacker shares 127.0.0.1 with the honest caller, and
            # must deliver every frame (test_source_gate covers the gate).
            ["--metrics-port", "0", "--staked", eth_address("hostile-node")]
            + ["--source-cut-offs", "0"],
        ).start()
        processes.append(router)
        router.wait_ready()
        routers = [router.info["addrs"][0], fake.info["addrs"][0]]
        node = worker_process(tmp_path, "node", routers, node_flags).start()
        processes.append(node)
        node.wait_ready()
        attacker = hostile_process(
            tmp_path,
            "attacker",
            ["attack", router.info["addrs"][0], "--mutations", str(2 * MUTATIONS)],
        ).start()
        processes.append(attacker)

        # The attacker finishes when it has sent every frame; the fake router answers links
        # until the node, having refused every one of its frames, cuts it off.
        wait_until_sync(lambda: not attacker.alive(), 180, "the attacker to finish")
        assert attacker.proc.returncode == 0, attacker.log_tail()
        wait_until_sync(lambda: rejections(node)[1] == 1, 180, "the node to cut off the fake")
        assert fake.alive(), fake.log_tail()

        # Each agent is alive.
        assert router.alive(), router.log_tail()
        assert node.alive(), node.log_tail()

        # The router refused every frame, counted by reason, and cut the attacker off.
        attack = report(tmp_path, "attacker")
        assert attack["frames_sent"] >= 4 * (len(BOMBS) + 2 * MUTATIONS)
        # A mutation can happen to leave a valid message, which gets an answer; a bomb never.
        answered = attack["streams_answered"]
        assert answered <= 4 * 2 * MUTATIONS
        assert attack["streams_refused"] == attack["frames_sent"] - answered
        assert attack["cut_off"] >= 1
        assert attack["refused_after_cut_off"] == 1
        assert attack["accepted_after_cut_off"] == 0
        # The router counts a refusal as it resets the stream: the last count may trail the reset.
        wait_until_sync(
            lambda: sum(rejections(router)[0].values()) >= attack["frames_sent"] - answered,
            30,
            "the router to count every refusal",
        )
        by_reason, cut_off = rejections(router)
        # The attacker takes any stream it cannot open for a cut-off, so its count may be high.
        assert 1 <= cut_off <= attack["identities"]
        assert sum(by_reason.values()) >= attack["frames_sent"] - answered
        for reason in ("cbor-tag", "cbor-too-deep", "cbor-truncated", "non-canonical"):
            assert by_reason[reason] > 0, by_reason

        # The node took every frame of the fake router (refusing all but the mutations that
        # happened to stay valid), then cut it off and linked to it no more.
        # The fake router rewrites its report after each link ends, which may trail the cut-off.
        wait_until_sync(
            lambda: report_shows(
                tmp_path, "fake-router", lambda r: r["frames_sent"] >= FAKE_ROUTER_FRAMES
            ),
            30,
            "the fake router's report of every frame",
        )
        fake_report = report(tmp_path, "fake-router")
        assert fake_report["frames_left"] == 0
        assert fake_report["frames_sent"] >= FAKE_ROUTER_FRAMES
        assert fake_report["streams_answered"] <= len(TO_NODE) * MUTATIONS
        node_reasons, node_cut_off = rejections(node)
        assert node_cut_off == 1
        assert sum(node_reasons.values()) >= FAKE_ROUTER_FRAMES
        for reason in ("cbor-tag", "cbor-too-deep", "unexpected-type"):
            assert node_reasons[reason] > 0, node_reasons

        # An honest caller is still served, by the honest node, through the router.
        async with caller([router.info["addrs"][0]]) as host:
            with trio.fail_after(30):
                for i in range(5):
                    reply = await invoke(
                        host, ID.from_base58(router.info["peer_id"]), "echo", b"hi%d" % i, 10
                    )
                    assert reply.ok, reply
                    assert reply.output == b"hi%d" % i
                    assert reply.node == node.info["peer_id"]
    finally:
        stop_all(processes)
