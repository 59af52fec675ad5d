"""A Hypothesis state machine over both reward contracts against a Python model of them.

Random sequences of rewards-root updates (cumulative earnings growing, funded by billed totals
and by emission), claims (one, many, wrong amount), emission funding and rate changes, and
consensus commits, funding and signer claims. After every step: EMC is conserved (the reward
contracts and every account involved hold what was put in), the chain agrees with the model,
no account is ever paid more than its leaf, and each commit's consensus reward, split among its
signers, sums to what was booked up to rounding dust smaller than its number of signers.
"""

import ape
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.contracts.rewards.helpers import (
    EMC,
    EMISSION_PER_COMMIT,
    REWARD_PER_COMMIT,
    bitmap_of,
    set_data,
    tree_of,
)

FUNDING = 10_000 * EMC
EPOCH_POWERS = {0: [10, 20, 30, 41], 1: [5, 7, 11]}
amounts = st.one_of(st.integers(0, 5 * EMC), st.sampled_from([0, 1, EMC]))


@pytest.mark.usefixtures("gpu_reward", "consensus_reward")
def test_rewards_state_machine(
    chain, deployer, token, gpu_reward, consensus_reward, vset_harness, accounts
):
    validators = list(accounts[1:5])
    earners = list(accounts[5:9])
    market = accounts[9]  # bills totals in and, standing in for consensus, posts roots
    members = {0: validators, 1: [validators[3], validators[2], validators[1]]}
    for epoch, powers in EPOCH_POWERS.items():
        data = set_data(
            vset_harness,
            [(str(a), p) for a, p in zip(members[epoch], powers, strict=True)],
            10 * epoch + 1,
        )
        vset_harness.store(epoch, data, sender=deployer)
    gpu_reward.set_consensus(market, sender=deployer)
    consensus_reward.set_consensus(vset_harness, sender=deployer)
    token.transfer(market, FUNDING, sender=deployer)
    token.approve(gpu_reward, 2**256 - 1, sender=deployer)
    holders = [deployer, market, gpu_reward, consensus_reward, *validators, *earners]
    supply_held = sum(token.balanceOf(h) for h in holders)

    class RewardsMachine(RuleBasedStateMachine):
        @initialize()
        def start(self):
            self.snapshot = chain.snapshot()
            # GPUComputeReward model.
            self.earned = {str(a): 0 for a in earners}  # leaves of the current root
            self.tree = None
            self.paid = {str(a): 0 for a in earners}
            self.pool = 0
            self.rate = EMISSION_PER_COMMIT
            self.gpu_in = 0  # billed + emission funded
            # ConsensusReward model.
            self.height = 0
            self.commits = {}  # height -> (reward, epoch, signer indices, signer power)
            self.claimed_heights = {str(v): set() for v in validators}
            self.cr_in = 0
            self.booked = 0
            self.cr_paid = 0

        def teardown(self):
            chain.restore(self.snapshot)

        # --- GPUComputeReward ------------------------------------------------------------

        @rule(increments=st.lists(amounts, min_size=4, max_size=4), short=st.booleans())
        def update_root(self, increments, short):
            new = {a: self.earned[a] + inc for a, inc in zip(self.earned, increments, strict=True)}
            total = sum(new.values())
            released = min(self.rate, self.pool)
            need = total - sum(self.paid.values())
            backing = self.gpu_in - sum(self.paid.values()) - self.pool
            bill = max(0, need - backing - released)
            tree = tree_of(new)
            if short and bill > 0:
                # One wei short of funding: the root must be refused.
                token.transfer(gpu_reward, bill - 1, sender=market)
                self.gpu_in += bill - 1
                with ape.reverts("reward: root exceeds funding"):
                    gpu_reward.update_root(tree.root, total, sender=market)
                return
            if bill:
                token.transfer(gpu_reward, bill, sender=market)
                self.gpu_in += bill
            receipt = gpu_reward.update_root(tree.root, total, sender=market)
            log = next(iter(gpu_reward.RootUpdated.from_receipt(receipt)))
            assert log.emission_released == released
            self.pool -= released
            self.earned, self.tree = new, tree

        @rule(i=st.integers(0, 3))
        def claim(self, i):
            account = earners[i]
            key = str(account)
            if self.tree is None:
                with ape.reverts("reward: invalid proof"):
                    gpu_reward.claim(account, 0, [], sender=account)
                return
            before = token.balanceOf(account)
            gpu_reward.claim(account, self.earned[key], self.tree.proofs[key], sender=earners[0])
            assert token.balanceOf(account) - before == self.earned[key] - self.paid[key]
            self.paid[key] = self.earned[key]

        @rule(subset=st.lists(st.integers(0, 3), min_size=1, max_size=4, unique=True))
        def claim_many(self, subset):
            if self.tree is None:
                return
            chosen = [earners[i] for i in subset]
            keys = [str(a) for a in chosen]
            befores = [token.balanceOf(a) for a in chosen]
            gpu_reward.claim_many(
                chosen,
                [self.earned[k] for k in keys],
                [self.tree.proofs[k] for k in keys],
                sender=market,
            )
            for account, key, before in zip(chosen, keys, befores, strict=True):
                assert token.balanceOf(account) - before == self.earned[key] - self.paid[key]
                self.paid[key] = self.earned[key]

        @rule(i=st.integers(0, 3), delta=st.integers(1, EMC))
        def claim_too_much(self, i, delta):
            if self.tree is None:
                return
            key = str(earners[i])
            with ape.reverts("reward: invalid proof"):
                gpu_reward.claim(
                    earners[i], self.earned[key] + delta, self.tree.proofs[key], sender=earners[i]
                )

        @rule(amount=st.integers(1, 30 * EMC))
        def fund_emission(self, amount):
            gpu_reward.fund_emission(amount, sender=deployer)
            self.pool += amount
            self.gpu_in += amount

        @rule(rate=st.sampled_from([0, EMC, EMISSION_PER_COMMIT, 40 * EMC]))
        def set_emission_rate(self, rate):
            gpu_reward.set_emission_per_commit(rate, sender=deployer)
            self.rate = rate

        # --- ConsensusReward -------------------------------------------------------------

        @rule(epoch=st.sampled_from([0, 1]), mask=st.integers(1, 15))
        def consensus_commit(self, epoch, mask):
            powers = EPOCH_POWERS[epoch]
            indices = [i for i in range(len(powers)) if mask >> i & 1] or [0]
            signer_power = sum(powers[i] for i in indices)
            self.height += 1
            available = self.cr_in - self.cr_paid - (self.booked - self.cr_paid)
            reward = min(REWARD_PER_COMMIT, available)
            vset_harness.record_commit(
                consensus_reward,
                self.height,
                epoch,
                bitmap_of(indices),
                signer_power,
                sender=deployer,
            )
            self.commits[self.height] = (reward, epoch, indices, signer_power)
            self.booked += reward

        @rule(amount=st.sampled_from([1, REWARD_PER_COMMIT, 2 * REWARD_PER_COMMIT + 7]))
        def fund_consensus(self, amount):
            token.transfer(consensus_reward, amount, sender=deployer)
            self.cr_in += amount

        @rule(v=st.integers(0, 3), count=st.integers(1, 5))
        def consensus_claim(self, v, count):
            account = validators[v]
            key = str(account)
            heights, indices, expected = [], [], 0
            for height, (reward, epoch, signers, signer_power) in self.commits.items():
                if account not in members[epoch] or height in self.claimed_heights[key]:
                    continue
                index = members[epoch].index(account)
                if index in signers:
                    heights.append(height)
                    indices.append(index)
                    expected += reward * EPOCH_POWERS[epoch][index] // signer_power
                if len(heights) == count:
                    break
            if not heights:
                return
            assert consensus_reward.claimable(account, heights, indices) == expected
            before = token.balanceOf(account)
            consensus_reward.claim(heights, indices, sender=account)
            assert token.balanceOf(account) - before == expected
            self.cr_paid += expected
            self.claimed_heights[key].update(heights)
            with ape.reverts("reward: already claimed"):
                consensus_reward.claim(heights[:1], indices[:1], sender=account)

        @rule(v=st.integers(0, 3))
        def consensus_claim_unsigned(self, v):
            account = validators[v]
            for height, (_, epoch, signers, _) in self.commits.items():
                if account in members[epoch] and members[epoch].index(account) not in signers:
                    with ape.reverts("reward: not a signer"):
                        consensus_reward.claim(
                            [height], [members[epoch].index(account)], sender=account
                        )
                    return

        # --- Invariants ------------------------------------------------------------------

        @invariant()
        def tokens_conserved(self):
            if not hasattr(self, "earned"):
                return
            assert sum(token.balanceOf(h) for h in holders) == supply_held
            gpu_balance = self.gpu_in - sum(self.paid.values())
            assert token.balanceOf(gpu_reward) == gpu_balance
            assert token.balanceOf(consensus_reward) == self.cr_in - self.cr_paid

        @invariant()
        def nobody_paid_beyond_leaves(self):
            if not hasattr(self, "earned"):
                return
            assert gpu_reward.emission_pool() == self.pool
            for key, paid in self.paid.items():
                assert gpu_reward.claimed(key) == paid <= self.earned[key]
            assert gpu_reward.total_claimed() == sum(self.paid.values())
            assert gpu_reward.total_claimed() <= gpu_reward.rewards_total()
            # Every reward still unclaimed is backed outside the emission pool.
            backing = token.balanceOf(gpu_reward) - gpu_reward.emission_pool()
            assert gpu_reward.rewards_total() - gpu_reward.total_claimed() <= backing

        @invariant()
        def consensus_rewards_sum_to_booked(self):
            if not hasattr(self, "earned"):
                return
            assert consensus_reward.total_booked() == self.booked
            assert consensus_reward.owed() == self.booked - self.cr_paid
            assert consensus_reward.total_claimed() == self.cr_paid
            assert token.balanceOf(consensus_reward) >= consensus_reward.owed()
            shares_total, dust_bound = 0, 0
            for reward, epoch, signers, signer_power in self.commits.values():
                shares = sum(reward * EPOCH_POWERS[epoch][i] // signer_power for i in signers)
                assert reward - len(signers) < shares <= reward or reward == shares == 0
                shares_total += shares
                dust_bound += len(signers)
            # Paid plus still claimable is what was booked, less dust under one wei a signer.
            assert self.booked - dust_bound <= shares_total <= self.booked
            assert self.cr_paid <= shares_total

    RewardsMachine.TestCase.settings = settings(
        max_examples=10,
        stateful_step_count=20,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    RewardsMachine.TestCase("runTest").runTest()
