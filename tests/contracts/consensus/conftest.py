"""A settlement system with four staked validators, deployed once per module."""

import pytest

from tests.contracts.consensus.system import EMC, add_validator, deploy_system


@pytest.fixture(scope="module")
def four_validator_system(project, chain, accounts):
    deployer = accounts[0]
    system = deploy_system(project, chain, deployer)
    for i in range(4):
        add_validator(system, deployer, accounts[10 + i], 10_000 * EMC, f"consensus-v{i}".encode())
    system.consensus.bootstrap(sender=deployer)
    return system
