"""Router benchmark: connections held, routed vs raw throughput and latency, reconnect storm.

Run: ``.venv/bin/python -m bench.router`` (several minutes on a 2-core machine). Every
agent is its own OS process on loopback; the compute-node side of the connection test is
spread over several dialer processes, each running many real compute-node agents.

Writes ``bench/results/router.json`` and prints a table. ``run --quick`` runs every phase at a
few nodes and short rounds, to show the bench works; ``run --results-dir DIR`` writes the JSON
elsewhere.
"""

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import multiaddr  # noqa: E402
import psutil  # noqa: E402
import trio  # noqa: E402
from libp2p.custom_types import TProtocol  # noqa: E402
from libp2p.peer.id import ID  # noqa: E402
from libp2p.peer.peerinfo import info_from_p2p_addr  # noqa: E402

from bench._common import add_common_options  # noqa: E402
from bench.stream_pool import RequestIterator, StreamPool  # noqa: E402
from offchain.crypto.keys import generate_keypair  # noqa: E402
from offchain.net import libp2p_patches  # noqa: E402
from offchain.net.host import (  # noqa: E402
    identity_from_seed,
    listen_addrs_of,
    loopback_listen_addr,
    make_host,
)
from offchain.net.limits import router_limits  # noqa: E402
from offchain.net.session import (  # noqa: E402
    ServeLimits,
    SessionPool,
    SessionRefused,
    serve_session,
)
from offchain.net.streams import NET_ERRORS, close_quietly, send  # noqa: E402
from offchain.protocol.frames import HEADER_SIZE, FrameError  # noqa: E402
from offchain.protocol.wire import Request, Response  # noqa: E402
from offchain.routers.router_client import caller, new_request_id  # noqa: E402
from offchain.runtime.spawn import (  # noqa: E402
    AgentProcess,
    router_process,
    seed_hex,
    stop_all,
    worker_process,
)
from offchain.workers.node import NodeAgent, NodeConfig  # noqa: E402

RAW = TProtocol("/emc-bench/raw/1.0.0")
RAW_SESSION = TProtocol("/emc-bench/raw-session/1.0.0")
RESULTS_FILE = "router.json"
RESULTS = ROOT / "bench" / "results" / RESULTS_FILE
LEVELS = (500, 1_000, 2_000)
PER_DIALER = 125
CONCURRENCY = (1, 10, 100)
PHASE_S = 5.0
# Callers of the routed load run while the router holds each connection level.
LOAD_CALLERS = 10
REPEATS = 3
STORM_NODES = 1_000
IDLE_S = 10.0  # seconds over which idle CPU is measured
SETTLE_S = 2.0  # pause after a level is reached, before measuring it
# Raw: plain request/response on reused streams between two hosts (the baseline).
# Raw session: the pipelined session protocol routed traffic uses, one hop, no router.
# Relay: the least a router can do, one more hop that only copies each raw frame through to
# the raw server and back: what py-libp2p costs per extra hop, before any routing logic.
KINDS = ("raw", "raw_session", "relay", "routed")
CPU_BY_KIND = {
    "raw": ("raw_server",),
    "raw_session": ("raw_server",),
    "relay": ("relay", "raw_server"),
    "routed": ("router", "node"),
}


# ---------------------------------------------------------------- helper processes


def dialer_main(args: argparse.Namespace) -> None:
    """Run ``args.count`` compute-node agents in this process, each linked to the router."""
    import logging  # noqa: PLC0415

    logging.basicConfig(level=logging.ERROR)

    async def run() -> None:
        stop = trio.Event()
        agents = [
            NodeAgent(
                NodeConfig(
                    routers=[args.router],
                    links=1,
                    workloads=["echo"],
                    backoff_initial_s=0.5,
                    backoff_max_s=8.0,
                    # Shared, loaded cores: give a dial and its first stream time to finish.
                    dial_timeout_s=30.0,
                    log_level="ERROR",
                    # Seeded keys (when asked): the router can be told these nodes are staked.
                    eth_key_seed=seed_hex(f"{args.key_label}{i}") if args.key_label else None,
                )
            )
            for i in range(args.count)
        ]
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                for agent in agents:
                    nursery.start_soon(agent.run, stop)
                    await trio.sleep(args.stagger)
                Path(args.ready_file).write_text(json.dumps({"pid": os.getpid()}))
                async for _ in signals:
                    stop.set()
                    break

    trio.run(run)


async def _serve_until_sigterm(host, ready_file: str) -> None:  # type: ignore[no-untyped-def]
    """Write the helper's ready file (its addresses and peer id), then wait for SIGTERM."""
    ready = {"addrs": [str(a) for a in listen_addrs_of(host)], "peer_id": host.get_id().to_string()}
    Path(ready_file).write_text(json.dumps(ready))
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            return


def raw_server_main(args: argparse.Namespace) -> None:
    """Serve the raw baselines, same framing, no routing, one hop: plain request/response on
    reused streams (RAW), and the pipelined session protocol that routed traffic uses."""

    async def handle(stream) -> None:  # type: ignore[no-untyped-def]
        try:
            async for request in RequestIterator(stream, 5.0, 5.0):
                await send(stream, Response(request.request_id, True, output=request.payload))
        finally:
            await close_quietly(stream)

    async def echo(request: Request) -> Response:
        return Response(request.request_id, True, output=request.payload)

    def busy(request: Request) -> Response:
        return Response(request.request_id, False, error="busy")

    async def handle_session(stream) -> None:  # type: ignore[no-untyped-def]
        try:
            await serve_session(stream, echo, ServeLimits(max_in_flight=4_096), busy)
        except SessionRefused as exc:
            print(f"raw session refused: {exc}", flush=True)
            await stream.reset()

    async def run() -> None:
        host = make_host(identity_from_seed(), router_limits())
        host.set_stream_handler(RAW, handle)
        host.set_stream_handler(RAW_SESSION, handle_session)
        async with host.run([loopback_listen_addr()]):
            await _serve_until_sigterm(host, args.ready_file)

    trio.run(run)


async def _read_frame_bytes(stream, buffer: bytearray) -> bytes:  # type: ignore[no-untyped-def]
    """Return the next whole frame's bytes, unparsed (``buffer`` keeps what came after it)."""
    while True:
        if len(buffer) >= HEADER_SIZE:
            end = HEADER_SIZE + int.from_bytes(buffer[2:HEADER_SIZE], "big")
            if len(buffer) >= end:
                frame = bytes(buffer[:end])
                del buffer[:end]
                return frame
        chunk = await stream.read(65_536)
        if not chunk:
            raise EOFError("stream ended")
        buffer.extend(chunk)


def relay_main(args: argparse.Namespace) -> None:
    """Copy raw request/response frames from each caller stream to the raw server and back."""

    async def run() -> None:
        host = make_host(identity_from_seed(), router_limits())
        upstream = info_from_p2p_addr(multiaddr.Multiaddr(args.upstream))

        async def handle(stream) -> None:  # type: ignore[no-untyped-def]
            out = await host.new_stream(upstream.peer_id, [RAW])
            inbound, outbound = bytearray(), bytearray()
            try:
                while True:
                    await out.write(await _read_frame_bytes(stream, inbound))
                    await stream.write(await _read_frame_bytes(out, outbound))
            except (EOFError, *NET_ERRORS):
                pass
            finally:
                await close_quietly(out)
                await close_quietly(stream)

        host.set_stream_handler(RAW, handle)
        async with host.run([loopback_listen_addr()]):
            await host.connect(upstream)
            await _serve_until_sigterm(host, args.ready_file)

    trio.run(run)


def _address(label: str) -> str:
    return generate_keypair(bytes.fromhex(seed_hex(label))).address


def helper(work: Path, name: str, argv: list[str]) -> AgentProcess:
    ready = work / f"{name}.json"
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--ready-file", str(ready)]
    return AgentProcess(name, command, ready, work / f"{name}.log")


# ---------------------------------------------------------------- measurements


def metric(process: AgentProcess, name: str) -> float:
    import re  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    port = process.info["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def wait_for_nodes(
    router: AgentProcess, target: int, timeout_s: float, progress: list | None = None
) -> tuple[int, float]:
    """Wait until the router holds ``target`` nodes or stops gaining; return (held, seconds).

    ``progress``, if given, gets (seconds, nodes held) each time the count grows.
    """
    started = time.monotonic()
    best, best_at = 0, started
    while time.monotonic() - started < timeout_s:
        held = int(metric(router, "emc_router_nodes"))
        if held > best:
            best, best_at = held, time.monotonic()
            if progress is not None:
                progress.append((round(best_at - started, 2), held))
        if held >= target:
            return held, time.monotonic() - started
        if time.monotonic() - best_at > 60:  # no progress for 60 s: plateau
            break
        time.sleep(0.25)
    return best, time.monotonic() - started


def idle_cpu_percent(pids: list[int], seconds: float | None = None) -> list[float]:
    """Return each process's CPU use over the same ``seconds`` (100 = one core)."""
    seconds = IDLE_S if seconds is None else seconds
    procs = [psutil.Process(pid) for pid in pids]
    for proc in procs:
        proc.cpu_percent(None)
    time.sleep(seconds)
    return [proc.cpu_percent(None) for proc in procs]


def rss_kb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1024


def bench_connections(work: Path, results: dict) -> None:
    processes: list[AgentProcess] = []
    try:
        # Every node staked, so the routed load below is the router's work, not the
        # one-task-at-a-time rule for unstaked nodes.
        staked = [
            arg
            for d in range(max(LEVELS) // PER_DIALER)
            for i in range(PER_DIALER)
            for arg in ("--staked", _address(f"conn{d}-{i}"))
        ]
        router = router_process(
            work, "conn-router", ["--metrics-port", "0", "--log-level", "WARNING", *staked]
        ).start()
        processes.append(router)
        router.wait_ready()
        time.sleep(SETTLE_S / 2)
        base_rss = rss_kb(router.pid)
        addr = router.info["addrs"][0]
        held_by_level: dict[str, int] = {}
        conns_by_level: dict[str, int] = {}
        mem_by_level: dict[str, float] = {}
        cpu_by_level: dict[str, float] = {}
        time_by_level: dict[str, float] = {}
        routed_at_level: dict[str, dict] = {}
        dialers_cpu_by_level: dict[str, float] = {}
        dialers = 0
        for level in LEVELS:
            level_started = time.monotonic()
            while dialers * PER_DIALER < level:
                # One dialer process at a time: a burst of hundreds of simultaneous Noise
                # handshakes on two shared cores only makes dials time out and back off.
                dialer = helper(
                    work,
                    f"dialer{dialers}",
                    [
                        "dialer",
                        "--router",
                        addr,
                        "--count",
                        str(PER_DIALER),
                        "--key-label",
                        f"conn{dialers}-",
                    ],
                ).start()
                processes.append(dialer)
                dialers += 1
                wait_for_nodes(router, dialers * PER_DIALER, timeout_s=90)
            held, _ = wait_for_nodes(router, level, timeout_s=120)
            took = time.monotonic() - level_started
            time.sleep(SETTLE_S)
            held = int(metric(router, "emc_router_nodes"))
            conns = int(metric(router, "emc_router_connections"))
            rss = rss_kb(router.pid)
            dialer_pids = [p.pid for p in processes if p.name.startswith("dialer")]
            cpu, *dialer_cpu = idle_cpu_percent([router.pid, *dialer_pids])
            # The node side's idle load shares the 2 cores with the routed load below.
            dialers_cpu_by_level[str(level)] = round(sum(dialer_cpu), 1)
            key = str(level)
            routed_at_level[key] = routed_load(router, LOAD_CALLERS, PHASE_S)
            held_by_level[key] = held
            conns_by_level[key] = conns
            mem_by_level[key] = round((rss - base_rss) / max(held, 1), 1)
            cpu_by_level[key] = round(cpu, 1)
            time_by_level[key] = round(took, 1)
            print(
                f"  {level:>5} asked: {held} nodes held ({conns} connections), "
                f"{mem_by_level[key]} KB/conn, idle CPU {cpu:.1f}% (node side "
                f"{dialers_cpu_by_level[key]}%), reached in {took:.1f}s; "
                f"routed {routed_at_level[key]['rps']} req/s, p50 "
                f"{routed_at_level[key]['p50_ms']} ms at {LOAD_CALLERS} callers, router CPU "
                f"{routed_at_level[key]['router_cpu_percent']}%",
                flush=True,
            )
        alive = [p.name for p in processes if p.name.startswith("dialer") and not p.alive()]
        results["connections_held"] = held_by_level
        results["connections_open"] = conns_by_level
        results["memory_per_connection_kb"] = mem_by_level
        results["idle_cpu_percent"] = cpu_by_level
        results["seconds_to_connect"] = time_by_level
        results["routed_with_nodes_held"] = {"callers": LOAD_CALLERS, **routed_at_level}
        results["dialers_idle_cpu_percent"] = dialers_cpu_by_level
        results["dialer_processes"] = dialers
        results["dialers_died"] = alive
        results["router_rss_mb_at_max"] = round(rss_kb(router.pid) / 1024, 1)
        # What an operator sees: SIGTERM to a router holding every connection, nodes still up.
        stopping = time.monotonic()
        stop_all([router], timeout_s=60.0)
        results["router_shutdown_s"] = round(time.monotonic() - stopping, 1)
        assert router.proc is not None
        results["router_shutdown_exit_code"] = router.proc.returncode
        print(
            f"  router with {held} nodes shut down in {results['router_shutdown_s']} s "
            f"(exit code {router.proc.returncode})"
        )
    finally:
        stop_all(processes)


def routed_load(router: AgentProcess, concurrency: int, seconds: float) -> dict:
    """Return routed req/s, p50 and errors of ``concurrency`` callers through ``router``.

    Measured in a second round; the first (``cold_rps``) opens the router's sessions to nodes.
    """
    from offchain.protocol import protocol_ids as protocols  # noqa: PLC0415

    async def run() -> tuple[int, list[float], int]:
        async with (
            caller([router.info["addrs"][0]]) as host,
            SessionPool(host, protocols.INVOKE) as pool,
        ):
            target = ID.from_base58(router.info["peer_id"])
            # First round: most requests open the router's session to a node not used yet.
            cold = await _load(pool, target, concurrency, seconds)
            router_proc.cpu_percent(None)
            return cold[0], await _load(pool, target, concurrency, seconds)

    router_proc = psutil.Process(router.pid)
    cold_count, (count, latencies, errors) = trio.run(run)
    return {
        "rps": round(count / seconds, 1),
        "p50_ms": round(_pct(latencies, 0.5), 2),
        "p99_ms": round(_pct(latencies, 0.99), 2),
        "errors": errors,
        "cold_rps": round(cold_count / seconds, 1),
        # Is the router the limit? Its CPU over the measured round (100 = one core).
        "router_cpu_percent": round(router_proc.cpu_percent(None), 1),
    }


async def _load(
    pool: StreamPool | SessionPool, target: ID, concurrency: int, seconds: float
) -> tuple[int, list[float], int]:
    """Run ``concurrency`` callers in a loop for ``seconds``, each request after the last."""
    latencies: list[float] = []
    errors = 0
    deadline = trio.current_time() + seconds

    async def worker() -> None:
        nonlocal errors
        while trio.current_time() < deadline:
            request = Request(new_request_id(), "echo", b"x" * 64, (), 10_000)
            started = time.perf_counter()
            try:
                with trio.fail_after(10):
                    response = await pool.request(target, request)
            except (trio.TooSlowError, FrameError, *NET_ERRORS):
                errors += 1
                continue
            if response.ok:
                latencies.append((time.perf_counter() - started) * 1_000)
            else:
                errors += 1

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return len(latencies), latencies, errors


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_throughput(work: Path, results: dict) -> None:
    from offchain.protocol import protocol_ids as protocols  # noqa: PLC0415

    processes: list[AgentProcess] = []
    try:
        staked = [arg for i in range(2) for arg in ("--staked", _address(f"tp{i}"))]
        router = router_process(
            work, "tp-router", ["--metrics-port", "0", "--log-level", "WARNING", *staked]
        ).start()
        processes.append(router)
        router.wait_ready()
        for i in range(2):
            node = worker_process(
                work,
                f"tp-node{i}",
                [router.info["addrs"][0]],
                [
                    "--parallel",
                    "64",
                    "--queue-size",
                    "256",
                    "--log-level",
                    "WARNING",
                    "--eth-key-seed",
                    seed_hex(f"tp{i}"),
                ],
            )
            processes.append(node.start())
            node.wait_ready()
        raw = helper(work, "raw-server", ["raw-server"]).start()
        processes.append(raw)
        raw.wait_ready()
        relay = helper(work, "relay", ["relay", "--upstream", raw.info["addrs"][0]]).start()
        processes.append(relay)
        relay.wait_ready()
        wait_for_nodes(router, 2, 60)

        cpu_of = {
            "router": [psutil.Process(router.pid)],
            "node": [psutil.Process(p.pid) for p in processes if p.name.startswith("tp-node")],
            "raw_server": [psutil.Process(raw.pid)],
            "relay": [psutil.Process(relay.pid)],
        }

        def cpu_seconds() -> dict[str, float]:
            return {
                name: sum(sum(p.cpu_times()[:2]) for p in group) for name, group in cpu_of.items()
            }

        async def run() -> dict:
            out: dict = {kind: {} for kind in KINDS}
            cpu: dict = {kind: {} for kind in KINDS}
            async with (
                caller(
                    [router.info["addrs"][0], raw.info["addrs"][0], relay.info["addrs"][0]]
                ) as host,
                SessionPool(host, protocols.INVOKE) as routed_pool,
                SessionPool(host, RAW_SESSION) as session_pool,
            ):
                router_id = ID.from_base58(router.info["peer_id"])
                raw_id = ID.from_base58(raw.info["peer_id"])
                targets = {
                    "raw": (StreamPool(host, RAW), raw_id),
                    "raw_session": (session_pool, raw_id),
                    "relay": (StreamPool(host, RAW), ID.from_base58(relay.info["peer_id"])),
                    "routed": (routed_pool, router_id),
                }
                for pool, target in targets.values():  # warm up
                    await _load(pool, target, 4, 1.0)
                for concurrency in CONCURRENCY:
                    samples: dict[str, list[dict]] = {kind: [] for kind in KINDS}
                    # Kinds interleaved, REPEATS rounds: load from other work on the shared
                    # cores then falls on every kind alike; each figure is the median round.
                    for _round in range(REPEATS):
                        for kind in KINDS:
                            pool, target = targets[kind]
                            before = cpu_seconds()
                            count, lat, errors = await _load(pool, target, concurrency, PHASE_S)
                            after = cpu_seconds()
                            sample = {
                                "rps": count / PHASE_S,
                                "p50_ms": _pct(lat, 0.50),
                                "p99_ms": _pct(lat, 0.99),
                                "errors": errors,
                                # CPU per answered request in each serving process (the
                                # caller's is the same code for every kind).
                                "cpu": {
                                    name: 1_000 * (after[name] - before[name]) / max(count, 1)
                                    for name in CPU_BY_KIND[kind]
                                },
                            }
                            samples[kind].append(sample)
                            print(
                                f"  {kind:>11} c={concurrency:<3} {sample['rps']:8.1f} req/s  "
                                f"p50 {sample['p50_ms']:6.2f} ms  p99 {sample['p99_ms']:7.2f} ms"
                                f"  errors {errors}",
                                flush=True,
                            )
                    for kind in KINDS:
                        rounds = samples[kind]
                        out[kind][str(concurrency)] = {
                            "rps": round(_median([r["rps"] for r in rounds]), 1),
                            "p50_ms": round(_median([r["p50_ms"] for r in rounds]), 2),
                            "p99_ms": round(_median([r["p99_ms"] for r in rounds]), 2),
                            "errors": sum(r["errors"] for r in rounds),
                            "rps_rounds": [round(r["rps"], 1) for r in rounds],
                        }
                        cpu[kind][str(concurrency)] = {
                            name: round(_median([r["cpu"][name] for r in rounds]), 3)
                            for name in CPU_BY_KIND[kind]
                        }
            return {"latency": out, "cpu": cpu}

        measured = trio.run(run)
        latency, cpu = measured["latency"], measured["cpu"]
        for kind, prefix in (
            ("routed", "routed"),
            ("raw", "raw"),
            ("raw_session", "raw_session"),
            ("relay", "relay"),
        ):
            results[f"{prefix}_rps"] = {c: v["rps"] for c, v in latency[kind].items()}
            results[f"{prefix}_p50_ms"] = {c: v["p50_ms"] for c, v in latency[kind].items()}
        results["p99_ms"] = {c: v["p99_ms"] for c, v in latency["routed"].items()}
        results["raw_p99_ms"] = {c: v["p99_ms"] for c, v in latency["raw"].items()}
        results["raw_session_p99_ms"] = {c: v["p99_ms"] for c, v in latency["raw_session"].items()}
        results["errors"] = {
            kind: {c: v["errors"] for c, v in latency[kind].items()} for kind in latency
        }
        results["cpu_ms_per_request"] = cpu
        results["rps_rounds"] = {
            kind: {c: v["rps_rounds"] for c, v in latency[kind].items()} for kind in latency
        }
        results["added_p50_ms"] = round(
            latency["routed"]["1"]["p50_ms"] - latency["raw"]["1"]["p50_ms"], 2
        )
        results["relay_added_p50_ms"] = round(
            latency["relay"]["1"]["p50_ms"] - latency["raw"]["1"]["p50_ms"], 2
        )
        results["relay_cost_fraction"] = {
            c: round(1 - latency["relay"][c]["rps"] / latency["raw"][c]["rps"], 3)
            for c in latency["raw"]
        }
        results["added_p50_vs_session_ms"] = round(
            latency["routed"]["1"]["p50_ms"] - latency["raw_session"]["1"]["p50_ms"], 2
        )
        for baseline, key in (
            ("raw", "routing_cost_fraction"),
            ("raw_session", "routing_cost_vs_session_fraction"),
        ):
            results[key] = {
                c: round(1 - latency["routed"][c]["rps"] / latency[baseline][c]["rps"], 3)
                for c in latency[baseline]
            }
    finally:
        stop_all(processes)


def bench_storm(work: Path, results: dict) -> None:
    processes: list[AgentProcess] = []
    try:
        seed = seed_hex("storm-router")
        router = router_process(
            work,
            "storm-router",
            ["--metrics-port", "0", "--identity-seed", seed, "--log-level", "WARNING"],
        ).start()
        processes.append(router)
        router.wait_ready()
        addr = router.info["addrs"][0]
        port = multiaddr.Multiaddr(addr).value_for_protocol("tcp")
        for i in range(STORM_NODES // PER_DIALER):
            dialer = helper(
                work, f"storm-dialer{i}", ["dialer", "--router", addr, "--count", str(PER_DIALER)]
            ).start()
            processes.append(dialer)
            wait_for_nodes(router, (i + 1) * PER_DIALER, timeout_s=90)
        held, _ = wait_for_nodes(router, STORM_NODES, 120)
        print(f"  storm: {held} nodes linked before the restart", flush=True)
        router.kill()
        restarted = router_process(
            work,
            "storm-router2",
            [
                "--metrics-port",
                "0",
                "--identity-seed",
                seed,
                "--log-level",
                "WARNING",
                "--listen",
                f"/ip4/127.0.0.1/tcp/{port}",
            ],
        )
        killed_at = time.monotonic()
        restarted.start()
        processes.append(restarted)
        restarted.wait_ready(60)
        ready_at = time.monotonic()
        dialers = [psutil.Process(p.pid) for p in processes if p.name.startswith("storm-dialer")]
        dialer_cpu_before = sum(sum(d.cpu_times()[:2]) for d in dialers)
        progress: list[tuple[float, int]] = []
        back, took = wait_for_nodes(restarted, held, 300, progress)
        router_cpu = sum(psutil.Process(restarted.pid).cpu_times()[:2])
        dialer_cpu = sum(sum(d.cpu_times()[:2]) for d in dialers) - dialer_cpu_before
        results["reconnect_storm_s"] = round(took, 1)
        results["reconnect_storm"] = {
            "nodes_before": held,
            "nodes_after": back,
            # Seconds from the router being ready until this share of the nodes was back.
            "seconds_to_share": {
                str(share): next((s for s, n in progress if n >= share * held), None)
                for share in (0.5, 0.9, 0.99)
            },
            "router_restart_s": round(ready_at - killed_at, 1),
            "seconds_from_router_ready": round(took, 1),
            # CPU seconds spent while the nodes came back: the router's includes its start-up.
            "router_cpu_s": round(router_cpu, 1),
            "dialers_cpu_s": round(dialer_cpu, 1),
        }
        print(
            f"  storm: {back}/{held} nodes back {took:.1f}s after the restarted router was "
            f"ready (restart itself {ready_at - killed_at:.1f}s); shares "
            f"{results['reconnect_storm']['seconds_to_share']}; CPU s router {router_cpu:.1f}, "
            f"dialers {dialer_cpu:.1f}",
            flush=True,
        )
    finally:
        stop_all(processes)


def run_all(args: argparse.Namespace) -> None:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if args.quick:
        _quick_sizes()
    out = Path(args.out) if args.out else args.results_dir / RESULTS_FILE
    # A partial run (--only) updates the phases it ran and keeps the others' figures.
    results: dict = json.loads(out.read_text()) if args.only and out.exists() else {}
    results["machine"] = {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }
    # py-libp2p patches left out by EMC_LIBP2P_PATCHES_OFF (inherited by every agent process),
    # so a run with a patch off says so: docs/upstream/README.md.
    results["libp2p_patches_off"] = sorted(libp2p_patches.switched_off())
    started = time.monotonic()
    global LEVELS
    if args.levels:
        LEVELS = tuple(int(x) for x in args.levels.split(","))
    phases = args.only.split(",") if args.only else ["throughput", "storm", "connections"]
    runners = {
        "connections": ("connections held by one router:", bench_connections),
        "throughput": ("throughput and latency (tiny echo workload):", bench_throughput),
        "storm": ("reconnect storm:", bench_storm),
    }
    for phase in phases:
        title, bench = runners[phase]
        print(title, flush=True)
        bench(work, results)
        results["bench_seconds"] = round(time.monotonic() - started, 1)
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        # Written after every phase, so a later failure keeps what was measured.
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if not args.only:
        print_table(results)
    print(f"\nwrote {out}")


def print_table(r: dict) -> None:
    print()
    print(f"{'metric':<34}{'value':>40}")
    print("-" * 74)
    for level in map(str, LEVELS):
        print(f"{'nodes held, asked ' + level:<34}{r['connections_held'][level]:>40}")
        print(f"{'  memory per connection (KB)':<34}{r['memory_per_connection_kb'][level]:>40}")
        print(f"{'  idle router CPU (%)':<34}{r['idle_cpu_percent'][level]:>40}")
    for c in map(str, CONCURRENCY):
        cell = f"{r['routed_rps'][c]} / {r['raw_rps'][c]} / {r['raw_session_rps'][c]} req/s"
        print(f"{'routed / raw / raw session, ' + c:<34}{cell:>40}")
        cost = (
            f"{100 * r['routing_cost_fraction'][c]:.0f}% vs raw, "
            f"{100 * r['routing_cost_vs_session_fraction'][c]:.0f}% vs raw session"
        )
        print(f"{'  routing cost':<34}{cost:>40}")
        if "relay_rps" in r:
            relay = f"{r['relay_rps'][c]} req/s, cost {100 * r['relay_cost_fraction'][c]:.0f}%"
            print(f"{'  bare relay hop':<34}{relay:>40}")
        lat = (
            f"p50 {r['routed_p50_ms'][c]} / {r['raw_p50_ms'][c]} / {r['raw_session_p50_ms'][c]} ms"
        )
        print(f"{'  latency routed / raw / session':<34}{lat:>40}")
        cpu = r["cpu_ms_per_request"]
        per = (
            f"router {cpu['routed'][c]['router']}, node {cpu['routed'][c]['node']}, "
            f"raw server {cpu['raw'][c]['raw_server']}"
        )
        print(f"{'  CPU ms per request':<34}{per:>40}")
    print(f"{'added p50 at 1 caller (ms)':<34}{r['added_p50_ms']:>40}")
    print(f"{'  against the raw session (ms)':<34}{r['added_p50_vs_session_ms']:>40}")
    if "relay_added_p50_ms" in r:
        print(f"{'  by a bare relay hop (ms)':<34}{r['relay_added_p50_ms']:>40}")
    storm = f"reconnect storm, {STORM_NODES:,} nodes (s)"
    print(f"{storm:<34}{r['reconnect_storm_s']:>40}")


def _quick_sizes() -> None:
    """Shrink every phase to a few nodes and short rounds (``--quick``)."""
    global LEVELS, PER_DIALER, CONCURRENCY, PHASE_S, REPEATS, STORM_NODES, IDLE_S, SETTLE_S
    LEVELS, PER_DIALER, CONCURRENCY = (10,), 10, (1, 10)
    PHASE_S, REPEATS, STORM_NODES, IDLE_S, SETTLE_S = 0.5, 1, 10, 0.5, 0.2


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    run = add_common_options(sub.add_parser("run"))
    run.add_argument("--workdir", default="/tmp/emc-bench-router")
    run.add_argument("--only", help="comma-separated phases: throughput, storm, connections")
    run.add_argument("--out", help="the JSON file (default router.json in --results-dir)")
    run.add_argument("--levels", help="comma-separated connection levels, for debugging")
    dialer = sub.add_parser("dialer")
    dialer.add_argument("--router", required=True)
    dialer.add_argument("--count", type=int, required=True)
    dialer.add_argument("--stagger", type=float, default=0.05)
    dialer.add_argument("--key-label", help="seed each node's Ethereum key from LABEL<index>")
    dialer.add_argument("--ready-file", required=True)
    relay = sub.add_parser("relay")
    relay.add_argument("--upstream", required=True)
    relay.add_argument("--ready-file", required=True)
    raw = sub.add_parser("raw-server")
    raw.add_argument("--ready-file", required=True)
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    if args.command == "dialer":
        dialer_main(args)
    elif args.command == "relay":
        relay_main(args)
    elif args.command == "raw-server":
        raw_server_main(args)
    else:
        run_all(args)


if __name__ == "__main__":
    main(sys.argv[1:])
