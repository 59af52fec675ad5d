"""A Hypothesis state machine for Staking against a Python model of it.

Random sequences of stake, request_unstake, withdraw, time travel and slash; after every step:
the token balance Staking holds equals the sum of stakes plus pending withdrawals, the chain
agrees with the model account by account, no withdrawal happens before unbonding, and no slash
takes more than the account had.
"""

from dataclasses import dataclass

import ape
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.contracts.helpers import (
    EMC,
    MIN_COMPUTE_STAKE,
    MIN_ROUTER_STAKE,
    MIN_VALIDATOR_STAKE,
    ROLE_COMPUTE,
    ROLE_ROUTER,
    ROLE_VALIDATOR,
    UNBONDING_PERIOD,
)

MINIMUMS = {
    ROLE_VALIDATOR: MIN_VALIDATOR_STAKE,
    ROLE_ROUTER: MIN_ROUTER_STAKE,
    ROLE_COMPUTE: MIN_COMPUTE_STAKE,
}
FUNDING = 100_000 * EMC


def required(roles: int) -> int:
    return sum(minimum for role, minimum in MINIMUMS.items() if roles & role)


@dataclass
class ModelAccount:
    staked: int = 0
    roles: int = 0
    pending: int = 0
    unlock: int = 0


amounts = st.one_of(
    st.sampled_from([MIN_COMPUTE_STAKE, MIN_ROUTER_STAKE, MIN_VALIDATOR_STAKE]),
    st.integers(min_value=1, max_value=12_000 * EMC),
)


@pytest.mark.usefixtures("staking")
def test_staking_state_machine(chain, deployer, token, staking, accounts):
    actors = list(accounts[5:8])
    slasher = accounts[9]
    for actor in actors:
        token.transfer(actor, FUNDING, sender=deployer)
        token.approve(staking, 2**256 - 1, sender=actor)
    staking.set_slasher(slasher, sender=deployer)

    class StakingMachine(RuleBasedStateMachine):
        @initialize()
        def start(self):
            self.snapshot = chain.snapshot()
            self.model = {a.address: ModelAccount() for a in actors}
            self.slashed_total = 0

        def teardown(self):
            chain.restore(self.snapshot)

        def _timestamp(self, receipt) -> int:
            return chain.blocks[receipt.block_number].timestamp

        @rule(i=st.integers(0, 2), role=st.sampled_from([1, 2, 4, 3, 6, 7]), amount=amounts)
        def stake(self, i, role, amount):
            actor, m = actors[i], self.model[actors[i].address]
            balance = token.balanceOf(actor)
            new_roles = m.roles | role
            if amount > balance:
                with ape.reverts("erc20: transfer amount exceeds balance"):
                    staking.stake(role, amount, sender=actor)
            elif m.staked + amount < required(new_roles):
                with ape.reverts("staking: stake below minimum"):
                    staking.stake(role, amount, sender=actor)
            else:
                staking.stake(role, amount, sender=actor)
                m.staked += amount
                m.roles = new_roles

        @rule(i=st.integers(0, 2), fraction=st.floats(0.0, 1.0), exact=st.booleans())
        def request_unstake(self, i, fraction, exact):
            actor, m = actors[i], self.model[actors[i].address]
            amount = m.staked if exact else int(m.staked * fraction)
            if amount == 0:
                with ape.reverts("staking: zero amount"):
                    staking.request_unstake(0, sender=actor)
                return
            remaining = m.staked - amount
            if remaining != 0 and remaining < required(m.roles):
                with ape.reverts("staking: stake below minimum"):
                    staking.request_unstake(amount, sender=actor)
                return
            receipt = staking.request_unstake(amount, sender=actor)
            m.staked = remaining
            m.roles = m.roles if remaining else 0
            m.pending += amount
            m.unlock = self._timestamp(receipt) + UNBONDING_PERIOD

        @rule(i=st.integers(0, 2))
        def withdraw(self, i):
            actor, m = actors[i], self.model[actors[i].address]
            if m.pending == 0:
                with ape.reverts("staking: nothing to withdraw"):
                    staking.withdraw(sender=actor)
                return
            if chain.pending_timestamp < m.unlock:
                # No withdrawal before unbonding: the chain must refuse it.
                with ape.reverts("staking: still unbonding"):
                    staking.withdraw(sender=actor)
                return
            before = token.balanceOf(actor)
            receipt = staking.withdraw(sender=actor)
            assert self._timestamp(receipt) >= m.unlock
            assert token.balanceOf(actor) == before + m.pending
            m.pending = 0

        @rule(seconds=st.sampled_from([1, 10, UNBONDING_PERIOD - 1, UNBONDING_PERIOD, 1_000]))
        def time_travel(self, seconds):
            chain.pending_timestamp += seconds

        @rule(i=st.integers(0, 2), amount=st.integers(1, 15_000 * EMC))
        def slash(self, i, amount):
            actor, m = actors[i], self.model[actors[i].address]
            available = m.staked + m.pending
            before = token.balanceOf(slasher)
            staking.slash(actor, amount, "state machine", sender=slasher)
            taken = token.balanceOf(slasher) - before
            assert taken == min(amount, available)
            assert taken <= available, "a slash never exceeds the stake"
            from_stake = min(taken, m.staked)
            m.staked -= from_stake
            m.pending -= taken - from_stake
            self.slashed_total += taken

        @invariant()
        def balance_equals_stakes_plus_pending(self):
            if not hasattr(self, "model"):
                return
            held = token.balanceOf(staking)
            assert held == staking.total_staked() + staking.total_pending()
            assert held == sum(m.staked + m.pending for m in self.model.values())

        @invariant()
        def chain_matches_model(self):
            if not hasattr(self, "model"):
                return
            for address, m in self.model.items():
                assert staking.staked(address) == m.staked
                assert staking.roles(address) == m.roles
                assert staking.pending_withdrawal(address) == m.pending

    StakingMachine.TestCase.settings = settings(
        max_examples=15,
        stateful_step_count=15,
        deadline=None,
        # Drawn afresh each run (no fixed seed, no example database to replay).
        derandomize=False,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    StakingMachine.TestCase("runTest").runTest()
