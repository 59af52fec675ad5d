"""`python -m bench [--quick] [--results-dir DIR]`: run every bench in bench/ that has a `main()`.

The options go to each bench's ``main(argv)``; ``make bench`` runs them all at full size.
"""

import importlib
import pkgutil
import sys
from pathlib import Path
from types import ModuleType


def is_bench(module: ModuleType) -> bool:
    """Return whether ``module`` is a bench: a ``main(argv)`` that writes ``RESULTS_FILE``.

    Other modules in bench/ (tools the benches and tests use) are not run.
    """
    return hasattr(module, "main") and hasattr(module, "RESULTS_FILE")


def main(argv: list[str] | None = None) -> int:
    """Run each bench module's main(argv); return non-zero if any failed."""
    argv = sys.argv[1:] if argv is None else argv
    failed = []
    for module in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        loaded = importlib.import_module(f"bench.{module.name}")
        if not is_bench(loaded):
            continue
        print(f"== bench.{module.name}", flush=True)
        try:
            loaded.main(list(argv))
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                failed.append(module.name)
        except Exception as error:  # noqa: BLE001 - report every failed benchmark, then fail
            print(f"bench.{module.name} failed: {error!r}", file=sys.stderr)
            failed.append(module.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
