"""The package layout's rule: imports between offchain's packages only point down.

crypto and protocol are pure and shared by every agent (and by the gateway and SDK to come), so
they import nothing above them; transport (net) and the chain (chain) do not know each other;
the agents sit on top. docs/decisions.md ("Layout") gives the reasons.
"""

import ast
from pathlib import Path

OFFCHAIN = Path(__file__).resolve().parents[1] / "offchain"

# A package may import only packages of a lower layer (and itself).
LAYER = {
    "crypto": 0,
    "protocol": 1,
    "runtime": 2,
    "net": 3,
    "chain": 3,
    "routers": 4,
    "workers": 4,
    "validators": 4,
    "gateway": 4,
    "client": 4,
    "devnet": 5,  # offchain/devnet/: the whole network on one machine, wired from the rest
    "(top)": 6,  # offchain/cli.py: the commands, the only importer of devnet
}


def package_of(path: Path) -> str:
    parts = path.relative_to(OFFCHAIN).parts
    return parts[0] if len(parts) > 1 else "(top)"


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """Return (package, line) for every import of another offchain package in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "offchain" and len(parts) > 1:
                package = parts[1] if (OFFCHAIN / parts[1]).is_dir() else "(top)"
                found.add((package, node.lineno))
    return found


def test_every_offchain_package__has_a_layer():
    packages = {p.name for p in OFFCHAIN.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages <= LAYER.keys(), packages - LAYER.keys()


def test_imports_between_packages__only_point_down():
    upward = []
    for path in sorted(OFFCHAIN.rglob("*.py")):
        source = package_of(path)
        for target, line in imported_packages(path):
            if target != source and LAYER[target] >= LAYER[source]:
                upward.append(f"{path.relative_to(OFFCHAIN.parent)}:{line} {source} -> {target}")
    assert not upward, "\n".join(sorted(upward))


def test_no_two_offchain_modules__share_a_name():
    seen: dict[str, list[str]] = {}
    for path in sorted(OFFCHAIN.rglob("*.py")):
        if path.name not in ("__init__.py", "__main__.py"):
            seen.setdefault(path.name, []).append(str(path.relative_to(OFFCHAIN.parent)))
    shared = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not shared, shared
