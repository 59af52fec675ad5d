"""Accounts by role and factory fixtures for the contract tests (Ape on a local anvil)."""

import ape.exceptions
import pytest

from tests.contracts.helpers import (
    INITIAL_SUPPLY,
    MIN_COMPUTE_STAKE,
    MIN_ROUTER_STAKE,
    MIN_VALIDATOR_STAKE,
    ROLE_VALIDATOR,
    UNBONDING_PERIOD,
)

# A reverted transaction makes Ape replay it step by step (debug_traceTransaction) to build a
# Vyper source traceback for the error: 20+ s per revert on this machine, for a report the tests
# never read. The revert reason, which `ape.reverts` checks, does not depend on it.
ape.exceptions._get_ape_traceback_from_tx = lambda txn: None


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
        proof = bls.signature_to_eip2537(bls.prove_possession(secret, account.address))
        staking.register_validator(pubkey, proof, sender=account)
        return secret, pubkey

    return _bls_validator


# --- Compute sockets and the market -----------------------------------------------------------

WORKLOADS = ["matmul-f32", "mlp-infer"]


@pytest.fixture(scope="session")
def treasury(accounts):
    return accounts[9]


@pytest.fixture(scope="session")
def consensus(accounts):
    """Stands in for ComputeConsensus: the market only checks that `settle` comes from it."""
    return accounts[4]


@pytest.fixture(scope="session")
def reward_sink(accounts):
    """Stands in for GPUComputeReward: billed totals are sent to it."""
    return accounts[3]


@pytest.fixture(scope="session")
def sockets(project, deployer, staking):
    return deployer.deploy(project.ComputeSocket, staking)


@pytest.fixture(scope="session")
def market(project, deployer, token, sockets, treasury):
    from tests.contracts.market.helpers import MARKET_FEE_BPS, WITHDRAW_DELAY

    return deployer.deploy(
        project.ComputeMarket, token, sockets, treasury, MARKET_FEE_BPS, WITHDRAW_DELAY
    )


@pytest.fixture
def wired_market(market, deployer, consensus, reward_sink):
    """The market with its consensus address and reward contract set."""
    market.set_consensus(consensus, sender=deployer)
    market.set_reward_contract(reward_sink, sender=deployer)
    return market


@pytest.fixture
def compute_node(staking, stake_as, node_owner):
    """node_owner staked for the compute role, serving WORKLOADS."""
    from tests.contracts.helpers import ROLE_COMPUTE

    stake_as(node_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    staking.declare_node("RTX 4090", 24_576, 500, WORKLOADS, sender=node_owner)
    return node_owner


@pytest.fixture
def create_socket(sockets, compute_node, chain):
    """Mint a socket issued by compute_node: create_socket(to=..., price=...) -> token id.

    ``terms`` is ``(open_serving, stake_required)``; None mints without them (issuer-only).
    """
    from tests.contracts.helpers import single_event

    def _create_socket(
        to=None,
        workload="matmul-f32",
        capacity=50,
        price=10**15,
        expiry=None,
        invocations_per_epoch=1_000,
        uri="ipfs://socket",
        terms=None,
    ):
        expiry = chain.pending_timestamp + 30 * 24 * 3600 if expiry is None else expiry
        args = [to or compute_node, workload, capacity, price, expiry, invocations_per_epoch, uri]
        receipt = sockets.mint(*args, *(terms or ()), sender=compute_node)
        return single_event(receipt, sockets.SocketMinted).token_id

    return _create_socket


@pytest.fixture
def serving_nodes(accounts, staking, stake_as, compute_node, deployer):
    """One account per case of the serving rule: the issuer (compute_node) and nodes other than
    it: staked, unstaked, staked without the workload, blacklisted, and a stranger."""
    from tests.contracts.helpers import ROLE_COMPUTE

    staked, unstaked, undeclared, blacklisted, stranger = accounts[10:15]
    for node in (staked, undeclared, blacklisted):
        stake_as(node, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    for node in (staked, unstaked, blacklisted):
        staking.declare_node("", 1_024, 1, WORKLOADS, sender=node)
    staking.declare_node("", 1_024, 1, ["nbody"], sender=undeclared)
    staking.set_blacklisted(blacklisted, True, sender=deployer)
    return {
        "issuer": compute_node,
        "staked": staked,
        "unstaked": unstaked,
        "undeclared": undeclared,
        "blacklisted": blacklisted,
        "stranger": stranger,
    }
