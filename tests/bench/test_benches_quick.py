"""Every bench in bench/ runs to the end in its quick mode, so a bench that breaks fails the suite.

The benches run at once, each its own process (``python -m bench.NAME --quick``), writing their
JSON into a temporary folder: the committed figures in bench/results/ are never touched. Each
test waits for its own bench and checks that it exited 0 and wrote its results file.
"""

import importlib
import json
import os
import pkgutil
import signal
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


def _selected(session) -> set[str]:
    """Return the benches whose test this session runs (all of them, unless ``-k`` narrowed it)."""
    return {
        item.callspec.params["name"]
        for item in session.items
        if getattr(item, "originalname", None) == QUICK_RUN_TEST and hasattr(item, "callspec")
    }


def _stop(process: subprocess.Popen) -> None:
    """Kill a bench and every agent it started (its own process group), and reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """Start the selected benches in quick mode at once; yield {name: (process, results, log)}.

    Each bench runs in a process group of its own, so a bench stopped early takes the routers,
    nodes and anvil it started with it.
    """
    started = {}
    for name in sorted(_selected(request.session)):
        folder = tmp_path_factory.mktemp(name)
        log = folder / "output.log"
        extra = ["--workdir", str(folder / "work")] if name == "router" else []
        command = [sys.executable, "-m", f"bench.{name}", "--quick"]
        command += ["--results-dir", str(folder / "results"), *extra]
        with log.open("w") as out:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started[name] = (process, folder / "results", log)
    yield started
    for process, _, _ in started.values():
        _stop(process)


QUICK_RUN_TEST = "test_bench__quick_mode__runs_to_the_end_and_writes_its_results"


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_bench__quick_mode__runs_to_the_end_and_writes_its_results(runs, name):
    process, results, log = runs[name]
    try:
        code = process.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _stop(process)
        pytest.fail(f"bench.{name} --quick still running after {TIMEOUT_S}s:\n{log.read_text()}")
    output = log.read_text()
    assert code == 0, f"bench.{name} --quick exited {code}:\n{output[-4000:]}"
    filename, key = RESULTS[name]
    assert key in json.loads((results / filename).read_text()), output[-4000:]
