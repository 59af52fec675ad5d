"""The two-step install (requirements/base.txt, then requirements/net.txt) holds together.

libp2p 0.8.1 needs py-cid 0.5.0, which ethpm-types (inside Ape) forbids; DESIGN.md section 8
found Ape unaffected. The contract tests prove Ape still compiles and tests, and
tests/scripts/test_deploy.py that it deploys; this file pins the environment itself.
"""

import subprocess
import sys
from importlib.metadata import version


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
