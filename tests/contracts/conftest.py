"""Accounts by role and factory fixtures for the contract tests (Ape on a local anvil)."""

import pytest

EMC = 10**18
INITIAL_SUPPLY = 1_000_000_000 * EMC
UNBONDING_PERIOD = 60
MIN_VALIDATOR_STAKE = 10_000 * EMC
MIN_ROUTER_STAKE = 1_000 * EMC
MIN_COMPUTE_STAKE = 100 * EMC
ROLE_VALIDATOR = 1
ROLE_ROUTER = 2
ROLE_COMPUTE = 4


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def validators(accounts):
    return accounts[1:5]


@pytest.fixture(scope="session")
def router_owner(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def node_owner(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def user(accounts):
    return accounts[7]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[8]


@pytest.fixture(scope="session")
def bls_harness(project, deployer):
    return deployer.deploy(project.BLSHarness)
