"""The cost of signed mesh summaries: time to sign one, and to verify one, per summary size.

* ``sign_us``: encode the summary body and sign it (keccak + secp256k1, coincurve backend);
* ``verify_warm_us``: what a router pays per fresh summary in steady state: decode the body,
  look up the origin's already verified binding, recover the signer (one ecrecover);
* ``verify_cold_us``: the first summary from an origin, or after its binding changed: also the
  binding's Ed25519 endorsement and its own ecrecover;
* ``open_us``: decoding the body alone (what a duplicate or replay costs: no verification);
* ``unsigned_encode_us``: for scale, the frame encoding of the same summary unsigned.

Usage: .venv/bin/python -m bench.mesh_signing [--rounds 500] [--quick] [--results-dir DIR]
Writes bench/results/mesh_signing.json. ``--quick``: 5 rounds, 2 repeats.
"""

import json
import platform
import sys
import time
from collections.abc import Callable

from libp2p.peer.id import ID

from offchain.chain.identity import (
    encode_endorsed_binding,
    make_endorsed_binding,
    static_stake_check,
)
from offchain.crypto.keys import generate_keypair
from offchain.net.host import identity_from_seed
from offchain.protocol.frames import MsgType, encode_frame
from offchain.protocol.wire import Summary, encode
from offchain.routers.signing import BindingCache, open_summary, sign_summary, verify_summary

from ._common import bench_parser

RESULTS_FILE = "mesh_signing.json"
SIZES = {"typical": (8, 16), "large": (256, 64)}  # (links, workloads)


def per_call_us(fn: Callable[[], object], rounds: int, repeats: int = 7) -> float:
    """Return the least over ``repeats`` of the mean time of one call, in microseconds.

    The least, as timeit advises: other load on the machine only ever adds time.
    """
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(rounds):
            fn()
        samples.append((time.perf_counter() - started) / rounds * 1e6)
    return round(min(samples), 1)


def measure(links: int, workloads: int, rounds: int, repeats: int = 7) -> dict[str, float]:
    """Return the timings for a summary with ``links`` links and ``workloads`` workloads."""
    libp2p = identity_from_seed(b"\x01" * 32)
    peer = ID.from_pubkey(libp2p.public_key).to_string()
    eth = generate_keypair(b"bench-router")
    binding = encode_endorsed_binding(make_endorsed_binding(eth, libp2p.private_key, peer))
    summary = Summary(
        peer,
        1_700_000_000_000,
        {f"12D3KooW{i:044d}": 1_000 + i for i in range(links)},
        {f"workload-{i}": 5_000 + i for i in range(workloads)},
    )
    signed = sign_summary(summary, eth, binding)
    warm = BindingCache()
    now = time.time()
    is_router = static_stake_check([eth.address])
    verify_summary(signed, warm, now, is_router=is_router)

    def cold() -> object:
        return verify_summary(signed, BindingCache(), now, is_router=is_router)

    return {
        "links": links,
        "workloads": workloads,
        "frame_bytes": len(encode(signed)),
        "unsigned_frame_bytes": len(encode_frame(MsgType.SUMMARY, summary.to_map())),
        "sign_us": per_call_us(lambda: sign_summary(summary, eth, binding), rounds, repeats),
        "verify_warm_us": per_call_us(
            lambda: verify_summary(signed, warm, now, is_router=is_router), rounds, repeats
        ),
        "verify_cold_us": per_call_us(cold, max(1, rounds // 4), repeats),
        "open_us": per_call_us(lambda: open_summary(signed), rounds, repeats),
        "unsigned_encode_us": per_call_us(
            lambda: encode_frame(MsgType.SUMMARY, summary.to_map()), rounds, repeats
        ),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the measurements, print a table and write the JSON results."""
    parser = bench_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args(argv if argv is not None else [])
    rounds, repeats = (5, 2) if args.quick else (args.rounds, 7)
    results = {name: measure(*size, rounds, repeats) for name, size in SIZES.items()}
    columns = [
        "frame_bytes",
        "unsigned_frame_bytes",
        "sign_us",
        "verify_warm_us",
        "verify_cold_us",
        "open_us",
        "unsigned_encode_us",
    ]
    print(f"{'summary':<10}" + "".join(f"{c:>22}" for c in columns))
    for name, row in results.items():
        print(f"{name:<10}" + "".join(f"{row[c]:>22}" for c in columns))
    path = args.results_dir / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {"machine": platform.processor() or platform.machine(), "summaries": results},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
