"""Suite-wide options: `slow` cases run only with --runslow (which also deepens fuzzing)."""

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run @slow tests")


def pytest_configure(config: pytest.Config) -> None:
    # Read by tests/fuzzing.py when the test modules are imported, after this hook.
    os.environ["EMC_RUNSLOW"] = "1" if config.getoption("--runslow") else "0"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)
