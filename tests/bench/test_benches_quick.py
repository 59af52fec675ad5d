"""Every bench in bench/ runs to the end in its quick mode, so a bench that breaks fails the suite.

The benches run at once, each its own process (``python -m bench.NAME --quick``), writing their
JSON into a temporary folder: the committed figures in bench/results/ are never touched. Each
test waits for its own bench and checks that it exited 0 and wrote its results file.
"""

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import is_bench

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
TIMEOUT_S = 600
# The file each bench writes, and a key its JSON must hold.
RESULTS = {
    "consensus": ("consensus.json", "4"),
    "gas": ("gas.json", "staking_gas"),
    "hostile": ("hostile.json", "attack"),
    "invocation": ("invocation.json", "check_cost"),
    "market_gas": ("gas.json", "market_gas"),
    "mesh_signing": ("mesh_signing.json", "summaries"),
    "router": ("router.json", "reconnect_storm_s"),
    "settlement_gas": ("gas.json", "commit_gas"),
    "stake_view": ("stake_view.json", "configs"),
    "workloads": ("workloads.json", "verifier_fraction"),
}


def _benches() -> list[str]:
    """Return the benches in bench/ (what ``python -m bench`` runs)."""
    names = [m.name for m in pkgutil.iter_modules([str(BENCH)]) if not m.name.startswith("_")]
    return sorted(name for name in names if is_bench(importlib.import_module(f"bench.{name}")))


def test_every_bench_has_a_quick_run_checked_here():
    assert _benches() == sorted(RESULTS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start every bench in quick mode at once; yield {name: (process, results dir, log)}."""
    started = {}
    for name in _benches():
        folder = tmp_path_factory.mktemp(name)
        log = folder / "output.log"
        extra = ["--workdir", str(folder / "work")] if name == "router" else []
        command = [sys.executable, "-m", f"bench.{name}", "--quick"]
        command += ["--results-dir", str(folder / "results"), *extra]
        with log.open("w") as out:
            process = subprocess.Popen(
                command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        started[name] = (process, folder / "results", log)
    yield started
    for process, _, _ in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_bench__quick_mode__runs_to_the_end_and_writes_its_results(runs, name):
    process, results, log = runs[name]
    try:
        code = process.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"bench.{name} --quick still running after {TIMEOUT_S}s:\n{log.read_text()}")
    output = log.read_text()
    assert code == 0, f"bench.{name} --quick exited {code}:\n{output[-4000:]}"
    filename, key = RESULTS[name]
    assert key in json.loads((results / filename).read_text()), output[-4000:]
