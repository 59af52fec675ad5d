"""The two-step install (requirements/base.txt, then requirements/net.txt) holds together.

libp2p 0.8.1 needs py-cid 0.5.0, which ethpm-types (inside Ape) forbids; DESIGN.md section 8
found Ape unaffected. The contract tests prove Ape still compiles and tests, and
tests/scripts/test_deploy.py that it deploys; this file pins the environment itself.
"""

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions, requires, version
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def test_pinned_versions__installed():
    expected = {
        "eth-ape": "0.8.51",
        "ape-vyper": "0.8.12",
        "ape-foundry": "0.8.12",
        "vyper": "0.4.3",
        "snekmate": "0.1.2",
        "py-ecc": "8.0.0",
        "numba": "0.68.1",
        "libp2p": "0.8.1",
        "py-cid": "0.5.0",
    }
    assert {name: version(name) for name in expected} == expected
    assert version("torch").startswith("2.13.0")


def test_pip_check__names_only_the_known_py_cid_conflict():
    result = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    problems = [line for line in result.stdout.splitlines() if line.strip()]
    assert problems == [
        "ethpm-types 0.6.32 has requirement py-cid<0.4,>=0.3.0, but you have py-cid 0.5.0."
    ]


def test_libp2p_and_ape__import_together():
    code = "import ape, libp2p, multiaddr; from libp2p import new_host; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def _imported_top_modules(*folders: str) -> set[str]:
    """Return the top-level modules imported anywhere under ``folders`` (absolute imports)."""
    modules = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return modules


def test_pyproject__declares_every_third_party_import():
    own = {"offchain", "scripts", "bench", "tests"}
    imported = _imported_top_modules("offchain", "scripts", "bench") - own
    third_party = {name for name in imported if name not in sys.stdlib_module_names}
    distributions = packages_distributions()
    declared = {
        re.split(r"[<>=!~\[ ;]", requirement)[0].lower().replace("_", "-")
        for requirement in requires("emc-protocol") or []
        if "extra ==" not in requirement
    }
    undeclared = {
        module: distributions.get(module)
        for module in third_party
        if not {d.lower().replace("_", "-") for d in distributions.get(module, [])} & declared
    }
    assert undeclared == {}


def test_pyproject__declared_ranges_hold_the_pinned_set():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    problems = []
    for line in data["project"]["dependencies"]:
        requirement = Requirement(line)
        installed = version(requirement.name)
        if not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"{requirement} but {installed} is installed")
    assert problems == []
