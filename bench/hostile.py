"""Hostile input: what it costs to refuse it, and what it leaves of honest throughput.

``python -m bench.hostile`` (``--quick`` for a seconds-long smoke run) prints two tables and
writes ``bench/results/hostile.json``:

1. Decode cost: the time per byte to refuse each known bomb and the worst of many random
   mutations of valid frames (the "worst input the fuzzer found"), against the time per byte
   to decode a valid frame of the same size. Work linear in the input keeps the ratio small.
2. Routed load under attack: honest callers through a router with two echo nodes, alone, then
   while hostile peer processes (``bench/hostile_peer.py``) send bad frames at a target rate
   on every protocol the router offers, with a fresh identity each time they are cut off (the
   most expensive attack: each identity costs the router a connection and a Noise handshake).
   Both rounds run back to back in the same process; the ratio is the figure. The attacker
   runs at the lowest CPU priority (``nice 19``), standing in for a machine of its own.
"""

import json
import random
import sys
import tempfile
import time
from pathlib import Path

from bench._common import bench_parser
from bench.hostile_peer import BOMBS, frame_of, mutate
from bench.router import routed_load
from offchain.protocol import protocol_ids
from offchain.protocol.errors import InputRejected
from offchain.protocol.frames import MsgType, decode_frame
from offchain.protocol.wire import MESSAGE_CLASSES, Request, encode
from offchain.runtime.spawn import AgentProcess, router_process, seed_hex, stop_all, worker_process

RESULTS_FILE = "hostile.json"
ALL_TYPES = frozenset(MsgType)


def _parse(frame: bytes) -> None:
    msg_type, value = decode_frame(frame, ALL_TYPES)
    MESSAGE_CLASSES[msg_type].from_map(value)


def _ns_per_byte(frame: bytes, repeat: int) -> float:
    """Return the best time per byte over ``repeat`` decodes of ``frame`` (refused or not)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter_ns()
        try:
            _parse(frame)
        except InputRejected:
            pass
        best = min(best, time.perf_counter_ns() - started)
    return best / len(frame)


def _valid_of_size(size: int) -> bytes:
    """Return a valid REQUEST frame of exactly ``size`` bytes (or the smallest one)."""
    empty = encode(Request(b"r" * 16, "echo", b"", (), 5_000))
    payload = max(0, size - len(empty))
    frame = encode(Request(b"r" * 16, "echo", b"x" * payload, (), 5_000))
    while len(frame) > size and payload > 0:  # the payload's length head grew
        payload -= 1
        frame = encode(Request(b"r" * 16, "echo", b"x" * payload, (), 5_000))
    return frame


def bench_decode(mutations: int, repeat: int) -> dict:
    """Return the decode cost of every bomb and of the worst mutation, against valid frames."""
    rng = random.Random(7)
    candidates = {f"bomb-{i}": frame_of(MsgType.REQUEST, bomb) for i, bomb in enumerate(BOMBS)}
    seed = encode(Request(b"r" * 16, "echo", b"payload" * 20, (), 5_000))
    worst_name, worst_cost = "", 0.0
    for i in range(mutations):
        frame = mutate(seed, rng)
        cost = _ns_per_byte(frame, 3)
        if cost > worst_cost:
            worst_name, worst_cost = f"mutation-{i}", cost
            candidates["worst-mutation"] = frame
    rows = []
    for name, frame in candidates.items():
        hostile = _ns_per_byte(frame, repeat)
        valid = _ns_per_byte(_valid_of_size(len(frame)), repeat)
        rows.append(
            {
                "input": name if name != "worst-mutation" else worst_name,
                "bytes": len(frame),
                "ns_per_byte": round(hostile, 2),
                "valid_ns_per_byte": round(valid, 2),
                "ratio": round(hostile / valid, 2),
            }
        )
    return {"rows": rows, "worst_ratio": max(r["ratio"] for r in rows)}


def bench_attack(
    work: Path,
    seconds: float,
    callers: int,
    rate: float,
    peers: int,
    strikes: int | None,
    only: str | None = None,
    gate: bool = True,
) -> dict:
    """Return routed load alone and under attack, measured back to back.

    ``strikes`` None: the router's default conduct policy, so attackers are cut off and come
    back as new identities; a number: the router's strike limit (a large one keeps the
    attackers connected, which measures the cost of refusing frames alone).
    """
    processes: list[AgentProcess] = []
    nodes = ("hb-n1", "hb-n2")
    staked = [a for n in nodes for a in ("--staked", _address(n))]
    policy = [] if strikes is None else ["--strikes", str(strikes)]
    policy += [] if gate else ["--source-cut-offs", "0"]
    try:
        router = router_process(work, "router", ["--metrics-port", "0", *staked, *policy]).start()
        processes.append(router)
        router.wait_ready()
        for name in nodes:
            flags = ["--eth-key-seed", seed_hex(name), "--workload", "echo", "--links", "1"]
            node = worker_process(work, name, [router.info["addrs"][0]], flags).start()
            processes.append(node)
            node.wait_ready()
        _wait_nodes(router, len(nodes))
        alone = routed_load(router, callers, seconds)
        report = work / "attacker.report"
        # At the lowest priority: on a two-core machine the attacker would otherwise take its
        # CPU from the honest callers and nodes, which an attacker on its own machine cannot.
        argv = ["nice", "-n", "19", sys.executable, "-m", "bench.hostile_peer", "attack"]
        argv += [router.info["addrs"][0]]
        argv += ["--rate", str(rate), "--peers", str(peers), "--rounds", "1000"]
        argv += ["--concurrency", "16" if only is None else "8"]
        argv += [] if only is None else ["--only", only]
        argv += ["--seconds", str(3 * seconds + 10), "--report", str(report)]
        attacker = AgentProcess("attacker", argv, work / "a.json", work / "attacker.log").start()
        processes.append(attacker)
        # Measure only once the attack is under way: the router has refused its first frames.
        before = _rejections(router)[0]
        deadline = time.monotonic() + 60
        while _rejections(router)[0] < before + 10:
            if time.monotonic() > deadline or not attacker.alive():
                raise RuntimeError(f"the attack did not start:\n{attacker.log_tail()}")
            time.sleep(0.1)
        started = time.monotonic()
        refused_before = _rejections(router)[0]
        attacked = routed_load(router, callers, seconds)
        refused = _rejections(router)[0] - refused_before
        attacker.stop()
        attacked_s = time.monotonic() - started
        sent = json.loads(report.read_text()) if report.exists() else {}
        rejected, cut_off = _rejections(router)
        refused_at_accept = _rejections(router, "source-refused")[0]
        return {
            "refused_at_accept": refused_at_accept,
            "attacker_gated": sent.get("gated", False),
            "strikes": strikes or "default",
            "source_gate": gate,
            "protocols": only or "all",
            "router_rejected": rejected,
            "router_cut_off": cut_off,
            "callers": callers,
            "seconds": seconds,
            "target_bad_frames_per_s": rate,
            "hostile_peers": peers,
            "alone": alone,
            "attacked": attacked,
            "attacker": sent,
            "bad_frames_per_s": round(sent.get("frames_sent", 0) / attacked_s, 1),
            "refused_per_s": round(refused / attacked_s, 1),
            "throughput_ratio": round(attacked["rps"] / alone["rps"], 3) if alone["rps"] else 0,
            "router_alive": router.alive(),
        }
    finally:
        stop_all(processes)


def bench_refusal_cost(work: Path, seconds: float) -> dict:
    """Return the router's CPU time per refused frame, with nothing else to do.

    One hostile connection sends bad requests on the invoke protocol as fast as the router
    refuses them, never cut off: the cost of a stream opened, negotiated, read, refused and
    reset, which is what every bad frame costs before the peer is cut off.
    """
    import psutil  # noqa: PLC0415

    processes: list[AgentProcess] = []
    try:
        router = router_process(work, "router", ["--metrics-port", "0", "--strikes", "1000000000"])
        processes.append(router.start())
        router.wait_ready()
        proc = psutil.Process(router.pid)
        report = work / "cost.report"
        argv = [sys.executable, "-m", "bench.hostile_peer", "attack", router.info["addrs"][0]]
        argv += ["--only", protocol_ids.INVOKE, "--concurrency", "8", "--rounds", "100000"]
        argv += ["--seconds", str(seconds), "--report", str(report)]
        refused_before = _rejections(router)[0]
        cpu_before = sum(proc.cpu_times()[:2])
        attacker = AgentProcess("cost", argv, work / "c.json", work / "cost.log").start()
        processes.append(attacker)
        attacker.proc.wait(timeout=seconds + 60)
        cpu = sum(proc.cpu_times()[:2]) - cpu_before
        refused = _rejections(router)[0] - refused_before
        return {
            "refused": refused,
            "router_cpu_s": round(cpu, 2),
            "router_cpu_ms_per_refusal": round(1_000 * cpu / max(refused, 1), 3),
            "refusals_per_core_s": round(refused / cpu, 1) if cpu else 0,
        }
    finally:
        stop_all(processes)


def _address(label: str) -> str:
    from offchain.crypto.keys import generate_keypair  # noqa: PLC0415

    return generate_keypair(bytes.fromhex(seed_hex(label))).address


def _rejections(router: AgentProcess, reason: str | None = None) -> tuple[float, float]:
    """Return the router's refusals (for ``reason``, or all) and peers cut off so far."""
    import urllib.request  # noqa: PLC0415

    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    port = router.info["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    rejected = cut_off = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "emc_rejected_total" and reason in (None, sample.labels["reason"]):
                rejected += sample.value
            elif sample.name == "emc_peers_cut_off_total":
                cut_off = sample.value
    return rejected, cut_off


def _wait_nodes(router: AgentProcess, count: int) -> None:
    from bench.router import metric  # noqa: PLC0415

    deadline = time.monotonic() + 60
    while metric(router, "emc_router_nodes") < count:
        if time.monotonic() > deadline:
            raise TimeoutError("nodes did not link")
        time.sleep(0.1)


def _policy(attack: dict) -> str:
    """Return a short name for an attack round's router policy."""
    if attack["strikes"] != "default":
        return "never cut off"
    return "default" if attack["source_gate"] else "default, no gate"


def print_tables(results: dict) -> None:
    """Print the decode table and the load table."""
    print(f"{'input':<16} {'bytes':>8} {'ns/byte':>9} {'valid ns/byte':>14} {'ratio':>7}")
    for row in results["decode"]["rows"]:
        print(
            f"{row['input']:<16} {row['bytes']:>8} {row['ns_per_byte']:>9} "
            f"{row['valid_ns_per_byte']:>14} {row['ratio']:>7}"
        )
    cost = results["refusal_cost"]
    print()
    print(
        f"refusing one bad frame costs the router {cost['router_cpu_ms_per_refusal']} ms of CPU "
        f"({cost['refusals_per_core_s']} refusals per core-second)"
    )
    print()
    print(
        f"{'policy':<20} {'round':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'refused/s':>9} {'ratio':>7}"
    )
    for attack in results["attack"]:
        for name in ("alone", "attacked"):
            r = attack[name]
            bad = attack["refused_per_s"] if name == "attacked" else ""
            ratio = f"{100 * attack['throughput_ratio']:.1f}%" if name == "attacked" else ""
            print(
                f"{_policy(attack):<20} {name:<10} {r['rps']:>8} {r['p50_ms']:>8} "
                f"{r['p99_ms']:>8} {r['errors']:>7} {bad!s:>9} {ratio:>7}"
            )


def main(argv: list[str] | None = None) -> None:
    """Run both measurements and write the JSON."""
    parser = bench_parser(__doc__)
    parser.add_argument("--out", type=Path, help="the JSON file (default in --results-dir)")
    args = parser.parse_args(argv if argv is not None else [])
    args.out = args.out or args.results_dir / RESULTS_FILE
    quick = args.quick
    results = {"decode": bench_decode(mutations=50 if quick else 2_000, repeat=3 if quick else 20)}
    with tempfile.TemporaryDirectory() as work:
        results["refusal_cost"] = bench_refusal_cost(Path(work), 3.0 if quick else 15.0)
    results["attack"] = []
    # Every protocol, cut off and back as new identities: with the default policy (the source
    # gate refuses the attacker's address after 3 cut-offs), and without the gate; then bad
    # requests on one invoke connection never cut off: the cost of refusing frames alone.
    configs = ((None, None, True), (None, None, False), (10**9, protocol_ids.INVOKE, True))
    for strikes, only, gate in configs:
        with tempfile.TemporaryDirectory() as work:
            results["attack"].append(
                bench_attack(
                    Path(work),
                    seconds=2.0 if quick else 10.0,
                    callers=10,
                    rate=1_000.0,
                    peers=2,
                    strikes=strikes,
                    only=only,
                    gate=gate,
                )
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print_tables(results)


if __name__ == "__main__":
    main(sys.argv[1:])
