"""Accounts by role and factory fixtures for the contract tests (Ape on a local anvil)."""

import pytest

from tests.contracts.helpers import (
    INITIAL_SUPPLY,
    MIN_COMPUTE_STAKE,
    MIN_ROUTER_STAKE,
    MIN_VALIDATOR_STAKE,
    ROLE_VALIDATOR,
    UNBONDING_PERIOD,
)


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


@pytest.fixture(scope="session")
def token(project, deployer):
    return deployer.deploy(project.EMCToken, INITIAL_SUPPLY)


@pytest.fixture(scope="session")
def staking(project, deployer, token):
    return deployer.deploy(
        project.Staking,
        token,
        UNBONDING_PERIOD,
        MIN_VALIDATOR_STAKE,
        MIN_ROUTER_STAKE,
        MIN_COMPUTE_STAKE,
    )


@pytest.fixture
def fund(token, deployer):
    """Send EMC from the deployer to an account: fund(account, amount)."""

    def _fund(account, amount):
        token.transfer(account, amount, sender=deployer)

    return _fund


@pytest.fixture
def stake_as(staking, token, fund):
    """Fund, approve and stake in one call: stake_as(account, role, amount)."""

    def _stake_as(account, role, amount):
        fund(account, amount)
        token.approve(staking, amount, sender=account)
        return staking.stake(role, amount, sender=account)

    return _stake_as


@pytest.fixture
def bls_validator(staking, stake_as):
    """Stake an account as validator and register a BLS key: bls_validator(account, seed)."""
    from offchain.crypto import bls

    def _bls_validator(account, seed: bytes):
        stake_as(account, ROLE_VALIDATOR, MIN_VALIDATOR_STAKE)
        secret = bls.keygen(seed)
        pubkey = bls.pubkey_to_eip2537(bls.public_key(secret))
        proof = bls.signature_to_eip2537(bls.prove_possession(secret))
        staking.register_validator(pubkey, proof, sender=account)
        return secret, pubkey

    return _bls_validator

