"""What every bench shares: the ``--quick`` and ``--results-dir`` options and the JSON output.

``--quick`` runs a bench at small sizes, in seconds, to show that it still runs to the end
(``tests/bench/test_benches_quick.py`` runs every bench so); its figures are not for reading.
``--results-dir`` sends the JSON elsewhere than ``bench/results/`` (the tests use a temporary
folder, so they never overwrite the committed figures).
"""

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def add_common_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--quick`` and ``--results-dir`` to ``parser`` and return it."""
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, seconds: checks that the bench runs"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="folder for the JSON results (default bench/results)",
    )
    return parser


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """Return an argument parser described by ``doc``'s first line, with the common options."""
    description = (doc or "").strip().splitlines()[0] if doc else None
    return add_common_options(argparse.ArgumentParser(description=description))


def write_json(path: Path, results: dict[str, Any], merge: bool = False) -> Path:
    """Write ``results`` to ``path`` (updating what is there when ``merge``); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = json.loads(path.read_text()) if merge and path.exists() else {}
    stored.update(results)
    path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    return path
