"""Workload throughput against the machine's BLAS, verifier cost, and proof-of-compute rounds.

    python -m bench.workloads            # full: sizes 1024, 2048, 4096
    python -m bench.workloads --quick    # sizes 256, 512: a smoke run in seconds
    python -m bench.workloads --results-dir DIR   # the JSON elsewhere than bench/results/

Prints a table and writes bench/results/workloads.json. Every ratio is measured in one run.

Verifier cost is split as the issuer runs it: ``prepare`` when the task is issued (it holds the
inputs before the node computes) and ``check`` when the result arrives. ``verifier_fraction``
is the check's time over the work's, ``verifier_prepare_fraction`` the prepare's, and
``verifier_total_fraction`` the one-shot ``verify``'s (prepare and check back to back). Each is a
median over repeats, timed from a cold cache (a 64 MiB buffer is read before each repeat), over
the median time of the work; ``verifier_fraction_best`` gives the same ratios from minimums
(what an unloaded machine approaches). For the matrix products the run also times the plainest
parallel read of the same matrices from a cold cache (``verifier_floor_fraction``): no verifier
that reads them can be faster. ``verifier_seconds`` holds the medians behind the fractions.
"""

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import torch
from numba import cuda, njit, prange

from offchain.workers import poc
from offchain.workers.kernels import modp
from offchain.workers.workloads import get_workload

from ._common import bench_parser

RESULTS_FILE = "workloads.json"
# Vendor peak rates (TFLOP/s) for the GPU table, by a substring of the device name.
GPU_PEAKS = {
    "H200": {"fp32": 67.0, "fp64": 67.0},
    "H100 PCIe": {"fp32": 51.0, "fp64": 51.0},
    "H100": {"fp32": 67.0, "fp64": 67.0},
    "A100": {"fp32": 19.5, "fp64": 19.5},
    "L4": {"fp32": 30.3, "fp64": 0.47},
    "T4": {"fp32": 8.1, "fp64": 0.25},
}


def timings(fn: Callable[[], object], reps: int, cold: bool = False) -> list[float]:
    """Return the times of ``reps`` calls after one warm-up call; ``cold`` evicts caches first."""
    fn()
    times = []
    for _ in range(reps):
        if cold:
            evict_caches()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def best(fn: Callable[[], object], reps: int) -> float:
    """Return the fastest of ``reps`` timed calls, after one warm-up call."""
    return min(timings(fn, reps))


_EVICT = np.ones(16 * 2**20, dtype=np.float32)  # 64 MiB, twice the reference machine's L3


def evict_caches() -> None:
    """Read a buffer larger than the last-level cache, so the next pass reads memory."""
    float(_EVICT.sum())


@njit(parallel=True, cache=True)
def _read_rows(mat):  # pragma: no cover - compiled
    """Read every entry of ``mat`` (4-byte words) once, in parallel rows; return a checksum."""
    m, k = mat.shape
    sums = np.empty(m, dtype=np.uint32)
    for i in prange(m):
        row = mat[i]
        total = np.uint32(0)
        for j in range(k):
            total += row[j]
        sums[i] = total
    return sums


def read_all(*mats: np.ndarray) -> None:
    """Read each matrix once: the least any verifier that reads them must do."""
    for mat in mats:
        _read_rows(mat.view(np.uint32))


VERIFIER_REPS = 15


def f32_pair(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "a": rng.standard_normal((n, n)).astype(np.float32),
        "b": rng.standard_normal((n, n)).astype(np.float32),
    }


def modp_pair(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "a": rng.integers(0, modp.P, (n, n), dtype=np.uint32),
        "b": rng.integers(0, modp.P, (n, n), dtype=np.uint32),
    }


def verifier_costs(wid: str, inputs: dict, work: list[float], rng, out: dict, key: str) -> None:
    """Record the verifier's prepare, check and one-shot times against the work's times.

    For the matrix products, also the cold read of A and B, of C, and of all three (the floor).
    The parts are timed in turn within each repeat, so that they meet the same load; the
    fractions are medians over medians, and ``verifier_fraction_best`` the same with minimums.
    """
    w = get_workload(wid)
    outputs = w.run(inputs, device="cpu")
    prepared = w.prepare(inputs, rng)
    assert w.check(prepared, outputs).accepted and w.verify(inputs, outputs, rng).accepted
    parts = {
        "prepare": lambda: w.prepare(inputs, rng),
        "check": lambda: w.check(prepared, outputs),
        "total": lambda: w.verify(inputs, outputs, rng),
    }
    products = wid in ("matmul-f32", "matmul-modp")
    if products:
        a, b, c = inputs["a"], inputs["b"], outputs["c"]
        parts |= {
            "read_ab": lambda: read_all(a, b),
            "read_c": lambda: read_all(c),
            "read_abc": lambda: read_all(a, b, c),
        }
    times: dict[str, list[float]] = {name: [] for name in parts}
    for fn in parts.values():
        fn()
    for _ in range(VERIFIER_REPS):
        for name, fn in parts.items():
            times[name] += _cold_once(fn)
    seconds = {"work": statistics.median(work)} | {
        name: statistics.median(values) for name, values in times.items()
    }
    least = {"work": min(work)} | {name: min(values) for name, values in times.items()}
    work_s = seconds["work"]
    out["verifier_fraction"].setdefault(wid, {})[key] = seconds["check"] / work_s
    out["verifier_prepare_fraction"].setdefault(wid, {})[key] = seconds["prepare"] / work_s
    out["verifier_total_fraction"].setdefault(wid, {})[key] = seconds["total"] / work_s
    best_parts = ("prepare", "check", "total") + (("read_abc",) if products else ())
    out["verifier_fraction_best"].setdefault(wid, {})[key] = {
        name: least[name] / least["work"] for name in best_parts
    }
    if products:
        seconds["read_gb_per_s"] = (a.nbytes + b.nbytes + c.nbytes) / seconds["read_abc"] / 1e9
        out["verifier_floor_fraction"].setdefault(wid, {})[key] = {
            "prepare": seconds["read_ab"] / work_s,
            "check": seconds["read_c"] / work_s,
            "total": seconds["read_abc"] / work_s,
        }
    out["verifier_seconds"].setdefault(wid, {})[key] = seconds


def _cold_once(fn: Callable[[], object]) -> list[float]:
    """Return the time of one call of ``fn`` made after evicting the caches."""
    evict_caches()
    start = time.perf_counter()
    fn()
    return [time.perf_counter() - start]


def bench_products(sizes, reps, int_max, rng, out):
    f32 = get_workload("matmul-f32")
    mod = get_workload("matmul-modp")
    for n in sizes:
        key, flops = str(n), 2 * n**3
        r = max(1, reps if n <= 2048 else 1)
        pair = f32_pair(n, rng)
        runs = timings(lambda pair=pair: f32.run(pair, device="cpu"), max(r, 3))
        t_np = best(lambda pair=pair: np.matmul(pair["a"], pair["b"]), r)
        out["matmul_f32_gflops"][key] = flops / min(runs) / 1e9
        out["numpy_blas_gflops"][key] = flops / t_np / 1e9
        verifier_costs("matmul-f32", pair, runs, rng, out, key)
        ints = modp_pair(n, rng)
        rates = {}
        for name in modp.STRATEGIES:
            t = best(
                lambda ints=ints, name=name: modp.matmul_mod(ints["a"], ints["b"], strategy=name), r
            )
            rates[name] = flops / t / 1e9
            out["matmul_modp_strategies"][name][key] = rates[name]
        runs = timings(lambda ints=ints: mod.run(ints, device="cpu"), max(r, 3))
        out["matmul_modp_gops"][key] = flops / min(runs) / 1e9
        verifier_costs("matmul-modp", ints, runs, rng, out, key)
        if n <= int_max:
            a64, b64 = ints["a"].astype(np.int64), ints["b"].astype(np.int64)
            t_int = best(lambda a64=a64, b64=b64: (a64 @ b64) % modp.P, 1)
            out["numpy_int_gops"][key] = flops / t_int / 1e9
        else:
            out["numpy_int_gops"][key] = None
        out["f32_over_modp"][key] = out["matmul_f32_gflops"][key] / out["matmul_modp_gops"][key]
        print(f"  products n={n} done", flush=True)


def bench_other_verifiers(quick, reps, rng, out):
    cases = {
        "mlp-infer": [
            (b, {"x": rng.standard_normal((b, 64)).astype(np.float32)})
            for b in ((512, 2048) if quick else (4096, 16384, 65536))
        ],
        "cnn-infer": [
            (b, {"x": rng.standard_normal((b, 1, 28, 28)).astype(np.float32)})
            for b in ((128, 512) if quick else (1024, 4096, 8192))
        ],
        "nbody-step": [],
    }
    for n in (512, 1024) if quick else (1024, 2048, 4096):
        cases["nbody-step"].append(
            (
                n,
                {
                    "pos": rng.uniform(-1, 1, (n, 3)),
                    "vel": rng.normal(0, 0.1, (n, 3)),
                    "mass": np.full(n, 1.0 / n),
                    "dt": np.array(0.01),
                },
            )
        )
    for wid, items in cases.items():
        w = get_workload(wid)
        for size, inputs in items:
            runs = timings(lambda w=w, inputs=inputs: w.run(inputs, device="cpu"), max(reps, 3))
            verifier_costs(wid, inputs, runs, rng, out, str(size))
            out["workload_gops"].setdefault(wid, {})[str(size)] = (
                w.ops(w.validate(inputs)) / min(runs) / 1e9
            )


def bench_poc(n, rounds, rng, out):
    results = [
        poc.run_round(poc.HonestProver(), poc.Challenge(poc.new_seed(rng), n), rng, 1e-6)
        for _ in range(rounds + 1)
    ][1:]
    assert all(r.result.accepted for r in results)
    out["poc_round_s"] = {
        "n": n,
        "rounds": rounds,
        "opened_rows": poc.OPEN_ROWS,
        "prover": statistics.median(r.prover_s for r in results),
        "verifier": statistics.median(r.verifier_s for r in results),
    }
    out["poc_e"] = {
        "node_e": poc.node_e([r.result for r in results]),
        "reference_ops_per_s": poc.REFERENCE_OPS_PER_S,
    }


def bench_gpu(sizes, reps, rng) -> dict:
    """Return the GPU table, or why there is none."""
    if not torch.cuda.is_available() and not cuda.is_available():
        return {"available": False, "reason": "no CUDA device on this machine"}
    table: dict = {
        "available": True,
        "matmul_f32_tflops": {},
        "matmul_f32_peak_fraction": {},
        "matmul_modp_gops": {},
        "verifier_fraction": {"matmul-f32": {}},
        "verifier_total_fraction": {"matmul-f32": {}},
    }
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cuda"
    peak = next((v for k, v in GPU_PEAKS.items() if k in name), None)
    table["device"], table["peak_tflops"] = name, peak
    torch.backends.cuda.matmul.allow_tf32 = False
    for n in sizes:
        key, flops = str(n), 2 * n**3
        if torch.cuda.is_available():
            a = torch.randn(n, n, device="cuda")
            b = torch.randn(n, n, device="cuda")

            def kernel(a=a, b=b):
                torch.matmul(a, b)
                torch.cuda.synchronize()

            t = best(kernel, reps)
            table["matmul_f32_tflops"][key] = flops / t / 1e12
            if peak:
                table["matmul_f32_peak_fraction"][key] = flops / t / 1e12 / peak["fp32"]
            pair = f32_pair(n, rng)
            w = get_workload("matmul-f32")
            t_run = statistics.median(
                timings(lambda pair=pair, w=w: w.run(pair, device="cuda"), max(reps, 3))
            )
            outputs = w.run(pair, device="cuda")
            prepared = w.prepare(pair, rng)
            t_check = statistics.median(
                timings(lambda w=w, p=prepared, o=outputs: w.check(p, o), VERIFIER_REPS, True)
            )
            t_ver = statistics.median(
                timings(lambda w=w, i=pair, o=outputs: w.verify(i, o, rng), VERIFIER_REPS, True)
            )
            table["verifier_fraction"]["matmul-f32"][key] = t_check / t_run
            table["verifier_total_fraction"]["matmul-f32"][key] = t_ver / t_run
        if cuda.is_available():
            ints = modp_pair(n, rng)
            t = best(lambda ints=ints: modp.matmul_mod_cuda(ints["a"], ints["b"]), reps)
            table["matmul_modp_gops"][key] = flops / t / 1e9
    return table


def print_table(out: dict) -> None:
    print(
        f"\n{'n':>6} {'f32 GF/s':>9} {'numpy':>9} {'modp Gop/s':>11} {'blas':>8} {'numba':>8} "
        f"{'np int':>8} {'f32/modp':>9}"
    )
    for key in out["matmul_f32_gflops"]:
        intg = out["numpy_int_gops"][key]
        print(
            f"{key:>6} {out['matmul_f32_gflops'][key]:9.1f} {out['numpy_blas_gflops'][key]:9.1f} "
            f"{out['matmul_modp_gops'][key]:11.1f} "
            f"{out['matmul_modp_strategies']['blas'][key]:8.1f} "
            f"{out['matmul_modp_strategies']['numba'][key]:8.1f} "
            f"{(f'{intg:.2f}' if intg else '-'):>8} {out['f32_over_modp'][key]:9.2f}"
        )
    print(
        f"\n{'verifier':>12} {'n':>6} {'work s':>8} {'prepare':>8} {'check':>8} {'total':>8} "
        f"{'floor':>8} {'read GB/s':>9} {'best chk':>8} {'best tot':>8} {'best flr':>8}"
    )
    for wid in ("matmul-f32", "matmul-modp"):
        for key, sec in out["verifier_seconds"][wid].items():
            floor = out["verifier_floor_fraction"][wid][key]
            best = out["verifier_fraction_best"][wid][key]
            print(
                f"{wid:>12} {key:>6} {sec['work']:8.4f} "
                f"{out['verifier_prepare_fraction'][wid][key]:8.2%} "
                f"{out['verifier_fraction'][wid][key]:8.2%} "
                f"{out['verifier_total_fraction'][wid][key]:8.2%} {floor['total']:8.2%} "
                f"{sec['read_gb_per_s']:9.1f} {best['check']:8.2%} {best['total']:8.2%} "
                f"{best['read_abc']:8.2%}"
            )
    print("(medians of cold repeats over the work's median; best: minimums; floor: cold read)")
    print(f"\n{'workload':>12} {'size':>7} {'Gop/s':>8} {'verifier/work':>14}")
    for wid, sizes in out["workload_gops"].items():
        for size, rate in sizes.items():
            print(f"{wid:>12} {size:>7} {rate:8.2f} {out['verifier_fraction'][wid][size]:14.2%}")
    p = out["poc_round_s"]
    print(
        f"\nproof of compute n={p['n']}: prover {p['prover']:.3f} s, verifier "
        f"{p['verifier']:.3f} s ({p['opened_rows']} rows); this machine E = "
        f"{out['poc_e']['node_e']:.2f}"
    )
    print(f"gpu: {json.dumps(out['gpu'])}")


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", help="matrix sizes (default by mode)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--int-baseline-max",
        type=int,
        default=2048,
        help="largest n for numpy's (non-BLAS) int64 baseline",
    )
    parser.add_argument("--out", type=Path, help="the JSON file (default in --results-dir)")
    args = parser.parse_args(argv if argv is not None else [])
    args.out = args.out or args.results_dir / RESULTS_FILE
    sizes = args.sizes or ([256, 512] if args.quick else [1024, 2048, 4096])
    if args.quick:  # a run that shows the bench works, not figures to read
        global VERIFIER_REPS
        VERIFIER_REPS, args.reps = 2, 1
    rng = np.random.default_rng(0)
    out: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "numba": numba.__version__,
            "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(),
            "numba_threads": numba.get_num_threads(),
            "load_average_at_start": os.getloadavg(),
        },
        "quick": args.quick,
        "matmul_f32_gflops": {},
        "numpy_blas_gflops": {},
        "matmul_modp_gops": {},
        "matmul_modp_strategies": {name: {} for name in modp.STRATEGIES},
        "matmul_modp_default_strategy": modp.DEFAULT_STRATEGY,
        "numpy_int_gops": {},
        "f32_over_modp": {},
        "verifier_fraction": {"matmul-f32": {}, "matmul-modp": {}},
        "verifier_prepare_fraction": {"matmul-f32": {}, "matmul-modp": {}},
        "verifier_total_fraction": {"matmul-f32": {}, "matmul-modp": {}},
        "verifier_floor_fraction": {"matmul-f32": {}, "matmul-modp": {}},
        "verifier_fraction_best": {"matmul-f32": {}, "matmul-modp": {}},
        "verifier_seconds": {"matmul-f32": {}, "matmul-modp": {}},
        "workload_gops": {},
    }
    bench_products(sizes, args.reps, args.int_baseline_max, rng, out)
    bench_other_verifiers(args.quick, args.reps, rng, out)
    bench_poc(256 if args.quick else poc.STANDARD_N, 3 if args.quick else 5, rng, out)
    out["gpu"] = bench_gpu(sizes, args.reps, rng)
    out["machine"]["load_average_at_end"] = os.getloadavg()
    print_table(out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
