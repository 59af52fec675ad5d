"""A sealed commit always executes (economic shortfalls are settled as far as they go), and no
user leaves with escrow that a commit in flight bills."""

import ape
import pytest

from tests.contracts.consensus.system import EMC, add_validator, deploy_system, make_commit, submit
from tests.contracts.helpers import single_event
from tests.contracts.market.helpers import billing_proof, billing_root

WITHDRAW_DELAY = 120  # deploy_system's market delay


@pytest.fixture
def system(project, chain, accounts):
    deployer = accounts[0]
    system = deploy_system(project, chain, deployer)
    for i in range(4):
        add_validator(system, deployer, accounts[10 + i], 10_000 * EMC, f"settle{i}".encode())
    system.consensus.bootstrap(sender=deployer)
    return system


def _deposit(system, account, amount, deployer):
    system.token.transfer(account, amount, sender=deployer)
    system.token.approve(system.market, amount, sender=account)
    system.market.deposit(amount, sender=account)


def test_commit__billed_total_beyond_escrow__settles_what_escrow_holds(system, accounts):
    """A sealed commit whose bill outgrew the escrow used to revert and halt settlement."""
    deployer, user = accounts[0], accounts[18]
    _deposit(system, user, 10 * EMC, deployer)
    spent = {user.address: 15 * EMC}
    commit = make_commit(1, billing_root=billing_root(spent), billed_total=15 * EMC)
    receipt = submit(system, commit, [0, 1, 2], accounts[1])
    shortfall = single_event(receipt, system.market.SettlementShortfall)
    assert (shortfall.commit, shortfall.billed_total, shortfall.moved) == (1, 15 * EMC, 10 * EMC)
    assert system.market.billing_shortfall() == 5 * EMC
    assert system.token.balanceOf(system.market) == 0
    assert system.token.balanceOf(system.gpu_reward) == 10 * EMC
    # The over-billed user loses its escrow and no more; settlement goes on.
    system.market.prove_spent(user, 15 * EMC, billing_proof(spent, user.address), sender=user)
    assert (system.market.escrow(user), system.market.overbilled(user)) == (0, 5 * EMC)
    submit(system, make_commit(2, billing_root=commit.billing_root), [0, 1, 2], accounts[1])
    assert system.consensus.last_height() == 2


def test_commit__rewards_root_beyond_funding__commit_lands_and_root_is_refused(system, accounts):
    """A parameter or funding change between sealing and sending no longer strands a height."""
    gpu = system.gpu_reward
    unfunded = make_commit(1, rewards_root=b"\x11" * 32, rewards_total=1_000 * EMC)
    receipt = submit(system, unfunded, [0, 1, 2], accounts[1])
    refused = single_event(receipt, gpu.RootRefused)
    assert (refused.rewards_root, refused.rewards_total, refused.reason) == (
        b"\x11" * 32,
        1_000 * EMC,
        "root exceeds funding",
    )
    assert system.consensus.last_height() == 1
    assert (gpu.rewards_root(), gpu.rewards_total(), gpu.root_count()) == (b"\x00" * 32, 0, 0)
    # The next height's cumulative root, once funded, is installed.
    system.token.transfer(gpu, 1_000 * EMC, sender=accounts[0])
    funded = make_commit(2, rewards_root=b"\x22" * 32, rewards_total=1_000 * EMC)
    submit(system, funded, [0, 1, 2], accounts[1])
    assert (gpu.rewards_root(), gpu.rewards_total()) == (b"\x22" * 32, 1_000 * EMC)


def test_withdraw__commit_lags_past_delay__waits_for_the_commit_in_flight(system, chain, accounts):
    """The late-bill theft: leave with escrow a commit in flight bills, so it falls on others."""
    deployer, leaver, other = accounts[0], accounts[18], accounts[19]
    market = system.market
    _deposit(system, leaver, 10 * EMC, deployer)
    _deposit(system, other, 10 * EMC, deployer)
    market.request_withdraw(10 * EMC, sender=leaver)
    chain.pending_timestamp += 10 * WITHDRAW_DELAY
    with ape.reverts("market: awaiting a commit"):
        market.withdraw(0, [], sender=leaver)
    # The commit in flight bills the leaver 4 EMC (sealed before its request).
    spent = {leaver.address: 4 * EMC, other.address: 0}
    commit = make_commit(1, billing_root=billing_root(spent), billed_total=4 * EMC)
    submit(system, commit, [0, 1, 2], accounts[1])
    receipt = market.withdraw(4 * EMC, billing_proof(spent, leaver.address), sender=leaver)
    assert single_event(receipt, market.Withdrawn).amount == 6 * EMC
    # The other user's escrow is whole, and the market holds exactly it.
    assert market.escrow(other) == 10 * EMC
    assert system.token.balanceOf(market) == 10 * EMC


def test_withdraw__owner_lowers_the_delay__still_waits_for_a_commit(system, chain, accounts):
    deployer, leaver = accounts[0], accounts[18]
    market = system.market
    _deposit(system, leaver, 10 * EMC, deployer)
    market.set_withdraw_delay(1, sender=deployer)
    market.request_withdraw(10 * EMC, sender=leaver)
    chain.pending_timestamp += 1
    with ape.reverts("market: awaiting a commit"):
        market.withdraw(0, [], sender=leaver)
