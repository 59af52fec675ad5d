"""IBFT consensus: decision latency (in link delays), traffic per height, and CPU per height.

For n = 4, 7, 16, 31 validators, in the simulator with a fixed link delay d:
  * latency_d: virtual time from the start of a height to its decision, in units of d, averaged
    over heights and validators; with a crashed proposer, the height that proposer leads;
  * messages and bytes sent per height by the whole network;
  * CPU time per decided height with real secp256k1 signatures and real BLS seals (py-ecc),
    split into the time spent signing, recovering, sealing, verifying seals, and everything
    else (state machine, encoding, simulator). Each validator checks the seals of its own quorum
    of COMMITs (one aggregate BLS check), uncached here. Sender recovery is cached per process,
    so the run recovers each distinct message once, which is what one real validator does;
    ``per_validator_cpu_ms`` is therefore (total - recoveries) / n + recoveries.

It also measures the wire codec on its own (``codec``): size, encode, decode and verify time of
a PREPARE, a COMMIT (96-byte seal), a ROUND-CHANGE with a full justification (a prepared
certificate of MAX_VALIDATORS = 128 PREPAREs) and a round-1 PRE-PREPARE with a full one (128
ROUND-CHANGEs naming a prepared round, and 128 PREPAREs), each with a 1 KiB value where it
carries one. ``encode_us`` writes the message from signed payloads; ``decode_us`` reads it with
a membership check and every cache cleared, recovery replaced by a table lookup (the codec's own
cost); ``verify_us`` is the same with real secp256k1 recoveries; ``non_member_us`` is the whole
refusal of the same bytes signed by a stranger (one recovery). Best of 5 runs, microseconds of
CPU per message. ``view_change_128`` is what one validator spends reading the ROUND-CHANGEs of
a view change at 128 validators: 128 of them, each carrying the same 128 PREPAREs, recoveries
included, caches cleared before the first.

Usage: .venv/bin/python -m bench.consensus [--sizes 4 7 16 31] [--heights 10] [--no-bls]
    [--codec-only] [--quick] [--results-dir DIR]
Writes bench/results/consensus.json, keyed by n, and the codec figures under ``codec``
(``--codec-only`` measures and updates only those). ``--quick``: n = 4, 2 heights, no BLS,
one run of each codec figure.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from types import ModuleType

from offchain.crypto import bls, keys
from offchain.protocol import ibft_wire
from offchain.validators import seals
from offchain.validators.sim import Simulation

from ._common import bench_parser, write_json

RESULTS_FILE = "consensus.json"
D = 1.0  # the link delay: every latency is reported in units of it
BASE_TIMEOUT = 10 * D
MAX_TIMEOUT = 160 * D


class Timers:
    """Wraps the signing primitives to count calls and add up their CPU time."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._saved: list[tuple[object, str, Callable]] = []

    def wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.totals[label] = self.totals.get(label, 0.0) + time.process_time() - start
                self.counts[label] = self.counts.get(label, 0) + 1

        self._saved.append((owner, name, original))
        setattr(owner, name, timed)

    def __enter__(self) -> Timers:
        self.wrap(keys, "sign_hash", "secp_sign")
        self.wrap(ibft_wire, "recover_address", "secp_recover")
        self.wrap(bls, "sign", "bls_sign")
        self.wrap(bls, "verify", "bls_verify")
        self.wrap(bls, "verify_aggregate", "bls_verify_aggregate")
        # every validator checks its own quorum of seals: no sharing of BLS checks in the run
        self.wrap_uncached(seals, "_bls_verify")
        self.wrap_uncached(seals, "_bls_verify_aggregate")
        return self

    def wrap_uncached(self, owner: object, name: str) -> None:
        original = getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, original.__wrapped__)

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)


def clear_caches() -> None:
    """Forget every cached decode and verification, so a timed run pays for all of them."""
    ibft_wire.clear_caches()
    seals._bls_verify.cache_clear()


def simulation(n: int, crashed: bool, seal_scheme: str) -> Simulation:
    """Return the scenario: n validators, link delay D, optionally height 1's proposer crashed."""
    # "silent" is a validator that is down from the start and never comes back
    behaviours = {1: "silent"} if crashed else {}
    return Simulation(
        n=n,
        seed=n,
        behaviours=behaviours,
        delay=D,
        base_timeout=BASE_TIMEOUT,
        max_timeout=MAX_TIMEOUT,
        seal_scheme=seal_scheme,
    )


def virtual(n: int, crashed: bool, heights: int) -> dict:
    """Return latency (in d) and traffic per height; cheap seals change neither."""
    heights = 1 if crashed else heights
    result = simulation(n, crashed, "hash").run(heights=heights)
    assert result.all_decided() and not result.conflicts(), "the benchmark run must decide"
    spans = []
    for i in result.correct():
        times = result.nodes[i].decision_times
        previous = 0.0
        for h in range(1, heights + 1):
            spans.append(times[h] - previous)
            previous = times[h]
    return {
        "latency_d": statistics.mean(spans) / D,
        "messages_per_height": result.messages() / heights,
        "bytes_per_height": result.bytes() / heights,
    }


def cpu(n: int, crashed: bool, seal_scheme: str) -> dict:
    """Return the CPU time of deciding one height, and its split, with real secp256k1 signing."""
    sim = simulation(n, crashed, seal_scheme)  # key generation is outside the timed part
    clear_caches()
    with Timers() as timers:
        start = time.process_time()
        result = sim.run(heights=1)
        total = time.process_time() - start
    assert result.all_decided(), "the benchmark run must decide"
    split = {k: v * 1000 for k, v in timers.totals.items()}
    other = total * 1000 - sum(split.values())
    recover = split.get("secp_recover", 0.0)
    per_validator = (total * 1000 - recover) / n + recover
    return {
        "cpu_ms_per_height": total * 1000,
        "cpu_split_ms": {**{k: round(v, 2) for k, v in split.items()}, "other": round(other, 2)},
        "calls": dict(timers.counts),
        "unit_ms": {k: round(split[k] / c, 3) for k, c in timers.counts.items() if c},
        "per_validator_cpu_ms": per_validator,
    }


def measure(n: int, crashed: bool, heights: int, with_bls: bool) -> dict:
    """Return one table row: virtual-time figures and CPU figures."""
    row = virtual(n, crashed, heights)
    hashed = cpu(n, crashed, "hash")
    row["cpu_ms_per_height_hash_seal"] = hashed["cpu_ms_per_height"]
    row.update(cpu(n, crashed, "bls") if with_bls else {"cpu_ms_per_height": None})
    return row


CODEC_VALUE = bytes(range(256)) * 4  # a 1 KiB batch, where a message carries a value


def codec_messages(wire: ModuleType) -> tuple[dict[str, bytes], dict[str, bytes], list]:
    """Return (messages by case, the same signed by a stranger, the members' keypairs)."""
    members = [keys.generate_keypair(f"codec-{i}".encode()) for i in range(wire.MAX_VALIDATORS)]
    stranger = keys.generate_keypair(b"codec-stranger")
    height, digest = 1_000_000, bytes(range(32))
    prepares = tuple(wire.sign(k, wire.Prepare(height, 0, digest)) for k in members)
    rcs = tuple(wire.sign(k, wire.RoundChange(height, 1, 0, digest)) for k in members)

    def build(key: keys.Keypair) -> dict[str, bytes]:
        return {
            "prepare": wire.prepare(key, height, 0, digest),
            "commit": wire.commit(key, height, 0, digest, bytes(range(96))),
            "round_change_128": wire.round_change(key, height, 1, 0, CODEC_VALUE, digest, prepares),
            "pre_prepare_128": wire.pre_prepare(key, height, 1, CODEC_VALUE, digest, rcs, prepares),
        }

    return build(members[0]), build(stranger), members


def _best_us(call: Callable[[], object], quick: bool) -> float:
    """Return the best CPU time of one ``call`` in microseconds over 5 runs (1 when ``quick``)."""
    timer = timeit.Timer(call, timer=time.process_time)
    number = 1 if quick else timer.autorange()[0]
    runs = timer.repeat(repeat=1 if quick else 5, number=number)
    return min(runs) / number * 1e6


def codec(wire: ModuleType = ibft_wire, quick: bool = False) -> dict[str, dict]:
    """Return size and encode, decode, verify and refusal time of each codec case."""
    ours, strangers, members = codec_messages(wire)
    addresses = {k.address for k in members}
    is_member = addresses.__contains__
    figures: dict[str, dict] = {}
    for case, data in ours.items():
        wire.clear_caches()
        message = wire.decode(data)
        senders = {s.signature: s.sender for s in _signed_items(message)}

        def decode(data: bytes = data) -> object:
            wire.clear_caches()
            return wire.decode(data, is_member)

        def refuse(data: bytes = strangers[case]) -> None:
            wire.clear_caches()
            try:
                wire.decode(data, is_member)
            except wire.NotMember:
                return
            raise AssertionError("a stranger's message was accepted")

        real = wire.recover_address
        wire.recover_address = lambda _digest, signature, senders=senders: senders[signature]
        try:
            decode_us = _best_us(decode, quick)
        finally:
            wire.recover_address = real
        figures[case] = {
            "bytes": len(data),
            "encode_us": round(_best_us(lambda m=message: wire.encode(m), quick), 1),
            "decode_us": round(decode_us, 1),
            "verify_us": round(_best_us(decode, quick), 1),
            "non_member_us": round(_best_us(refuse, quick), 1),
        }
    wire.clear_caches()
    return figures


def _signed_items(message: object) -> list:
    """Return every signed payload a decoded message carries."""
    items = []
    for field in ("proposal", "prepare", "commit", "round_change"):
        if hasattr(message, field):
            items.append(getattr(message, field))
    for field in ("round_changes", "prepares", "commits"):
        items.extend(getattr(message, field, ()))
    return items


def view_change(wire: ModuleType = ibft_wire, quick: bool = False) -> dict:
    """Return the CPU a validator spends reading a view change's ROUND-CHANGEs at 128 members.

    Each of the MAX_VALIDATORS members sends a ROUND-CHANGE carrying the same prepared
    certificate (MAX_VALIDATORS PREPAREs); one validator decodes them all, recovering every
    signer, with every cache cleared first.
    """
    ours, _, members = codec_messages(wire)
    is_member = {k.address for k in members}.__contains__
    rc = wire.decode(ours["round_change_128"])
    cert = rc.prepares
    datas = [
        wire.round_change(k, 1_000_000, 1, 0, CODEC_VALUE, cert[0].payload.digest, cert)
        for k in members
    ]

    def read_all() -> None:
        wire.clear_caches()
        for data in datas:
            wire.decode(data, is_member)

    total_us = _best_us(read_all, quick)
    wire.clear_caches()
    return {
        "messages": len(datas),
        "ms_all": round(total_us / 1000, 1),
        "us_per_message": round(total_us / len(datas), 1),
    }


def print_codec(figures: dict[str, dict]) -> None:
    """Print the codec figures as a table."""
    print(
        f"{'message':>17} {'bytes':>7} {'encode us':>10} {'decode us':>10} {'verify us':>10}"
        f" {'stranger us':>12}"
    )
    for case, row in figures.items():
        print(
            f"{case:>17} {row['bytes']:>7} {row['encode_us']:>10.1f} {row['decode_us']:>10.1f}"
            f" {row['verify_us']:>10.1f} {row['non_member_us']:>12.1f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 7, 16, 31])
    parser.add_argument("--heights", type=int, default=10)
    parser.add_argument("--no-bls", action="store_true", help="skip the real-BLS CPU runs")
    parser.add_argument(
        "--codec-only", action="store_true", help="measure only the wire codec, keep the rest"
    )
    args = parser.parse_args(argv if argv is not None else [])
    if args.quick:
        args.sizes, args.heights, args.no_bls = [4], 2, True
    machine = f"{platform.processor() or platform.machine()}, {platform.python_version()}"
    figures = codec(quick=args.quick)
    print_codec(figures)
    changes = view_change(quick=args.quick)
    print(
        f"view change: {changes['messages']} ROUND-CHANGEs sharing one certificate,"
        f" {changes['ms_all']:.1f} ms of CPU in all",
        flush=True,
    )
    codec_entry = {"cases": figures, "view_change_128": changes, "machine": machine}
    path = args.results_dir / RESULTS_FILE
    if args.codec_only:
        print(f"wrote {write_json(path, {'codec': codec_entry}, merge=True)}")
        return
    results: dict[str, dict] = {}
    header = (
        f"{'n':>3} {'case':>9} {'lat (d)':>8} {'msgs/h':>8} {'KB/h':>8} {'cpu ms/h':>10}"
        f" {'hash-seal':>10} {'bls sign':>9} {'bls vrfy':>9} {'secp':>7} {'other':>7}"
        f" {'1 node ms':>10}"
    )
    print(header)
    for n in args.sizes:
        entry: dict = {}
        for crashed in (False, True):
            row = measure(n, crashed, args.heights, not args.no_bls)
            row["settings"] = {
                "d": D,
                "base_timeout_d": BASE_TIMEOUT / D,
                "max_timeout_d": MAX_TIMEOUT / D,
                "heights": 1 if crashed else args.heights,
                "crashed": "validator 1, the proposer of height 1, down from t=0"
                if crashed
                else None,
            }
            if crashed:
                entry["crashed_proposer"] = row
            else:
                entry.update(row)
            split = row.get("cpu_split_ms", {})
            secp = split.get("secp_sign", 0) + split.get("secp_recover", 0)
            verify = (
                split.get("bls_verify", 0) + split.get("bls_verify_aggregate", 0) if split else None
            )
            fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
            print(
                f"{n:>3} {'crashed' if crashed else 'normal':>9} {row['latency_d']:>8.2f}"
                f" {row['messages_per_height']:>8.0f} {row['bytes_per_height'] / 1024:>8.1f}"
                f" {fmt(row['cpu_ms_per_height']):>10} {row['cpu_ms_per_height_hash_seal']:>10.1f}"
                f" {fmt(split.get('bls_sign')):>9} {fmt(verify):>9}"
                f" {secp:>7.1f} {split.get('other', 0):>7.1f}"
                f" {fmt(row.get('per_validator_cpu_ms')):>10}",
                flush=True,
            )
        results[str(n)] = entry
    for entry in results.values():
        entry["machine"] = machine
    results["codec"] = codec_entry
    print(f"wrote {write_json(path, results)}")


if __name__ == "__main__":
    main(sys.argv[1:])
