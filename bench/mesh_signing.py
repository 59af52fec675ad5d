"""The cost of signed mesh summaries: time to sign one, and to verify one, per summary size.

* ``sign_us``: encode the summary body and sign it (keccak + secp256k1, coincurve backend);
* ``verify_warm_us``: what a router pays per fresh summary in steady state: decode the body,
  look up the origin's already verified binding, recover the signer (one ecrecover);
* ``verify_cold_us``: the first summary from an origin, or after its binding changed: also the
  binding's Ed25519 endorsement and its own ecrecover;
* ``open_us``: decoding the body alone (what a duplicate or replay costs: no verification);
* ``unsigned_encode_us``: for scale, the frame encoding of the summary that was sent before.

Usage: python bench/mesh_signing.py [--rounds 500]
Writes bench/results/mesh_signing.json.
"""

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

from libp2p.peer.id import ID

from offchain.crypto.keys import generate_keypair
from offchain.net.framing import MsgType, encode_frame
from offchain.net.host import identity_from_seed
from offchain.net.identity import (
    encode_endorsed_binding,
    make_endorsed_binding,
    static_stake_check,
)
from offchain.net.messages import Summary, encode
from offchain.routers.signing import BindingCache, open_summary, sign_summary, verify_summary

RESULTS = Path(__file__).parent / "results" / "mesh_signing.json"
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


def measure(links: int, workloads: int, rounds: int) -> dict[str, float]:
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
        "sign_us": per_call_us(lambda: sign_summary(summary, eth, binding), rounds),
        "verify_warm_us": per_call_us(
            lambda: verify_summary(signed, warm, now, is_router=is_router), rounds
        ),
        "verify_cold_us": per_call_us(cold, max(1, rounds // 4)),
        "open_us": per_call_us(lambda: open_summary(signed), rounds),
        "unsigned_encode_us": per_call_us(
            lambda: encode_frame(MsgType.SUMMARY, summary.to_map()), rounds
        ),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the measurements, print a table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args(argv if argv is not None else [])
    results = {name: measure(*size, args.rounds) for name, size in SIZES.items()}
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
    RESULTS.write_text(
        json.dumps(
            {"machine": platform.processor() or platform.machine(), "summaries": results},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
