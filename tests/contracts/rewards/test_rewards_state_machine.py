"""A Hypothesis state machine over both reward contracts against a Python model of them.

Random sequences of rewards-root updates (cumulative earnings growing, funded by billed totals
and by emission), claims (one, many, wrong amount), emission funding and rate changes, and
consensus heights sealed, booked (lazily, as far as funding pays in full), funded and claimed.
After every step: EMC is conserved (the reward contracts and every account involved hold what
was put in), the chain agrees with the model, no account is ever paid more than its leaf, and
each booked height's consensus reward, split among its signers, sums to what was booked up to
rounding dust smaller than its number of signers.

Reads and expected reverts go through raw (batched) eth_calls: the invariants read ~25 values
after every step, and Ape's per-call overhead would otherwise dominate the run.
"""

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from web3.exceptions import ContractLogicError

from tests.contracts.rewards.helpers import (
    EMC,
    EMISSION_PER_COMMIT,
    REWARD_PER_COMMIT,
    bitmap_of,
    set_data,
    tree_of,
)

FUNDING = 10_000 * EMC
INITIAL_EMISSION = 25 * EMC
INITIAL_CONSENSUS_FUNDS = 10 * REWARD_PER_COMMIT
EPOCH_POWERS = {0: [10, 20, 30, 41], 1: [5, 7, 11]}
amounts = st.one_of(st.integers(0, 5 * EMC), st.sampled_from([0, 1, EMC]))


class RawCalls:
    """Batched eth_calls that decode uint256 results, and revert checks without a transaction."""

    def __init__(self, web3):
        self.web3 = web3

    def uints(self, calls) -> list[int]:
        """Return the uint256 results of (contract method, args) view calls, in one batch."""
        with self.web3.batch_requests() as batch:
            for method, args in calls:
                data = method.encode_input(*args)
                batch.add(self.web3.eth.call({"to": method.contract.address, "data": data}))
            return [int.from_bytes(result, "big") for result in batch.execute()]

    def reverts(self, method, args, sender, message: str) -> None:
        """Check that calling ``method(*args)`` from ``sender`` reverts with ``message``."""
        data = method.encode_input(*args)
        tx = {"from": sender.address, "to": method.contract.address, "data": data}
        try:
            self.web3.eth.call(tx)
        except ContractLogicError as error:
            assert error.message == f"execution reverted: {message}"
            return
        raise AssertionError(f"expected a revert: {message}")


@pytest.mark.parametrize(
    ("examples", "steps"),
    [pytest.param(8, 20, id="quick"), pytest.param(25, 30, id="long", marks=pytest.mark.slow)],
)
def test_rewards_state_machine(
    chain, deployer, token, gpu_reward, consensus_reward, vset_harness, accounts, examples, steps
):
    validators = list(accounts[1:5])
    earners = list(accounts[5:9])
    market = accounts[9]  # bills totals in and, standing in for consensus, posts roots
    members = {0: validators, 1: [validators[3], validators[2], validators[1]]}
    for epoch, powers in EPOCH_POWERS.items():
        entries = [(str(a), p) for a, p in zip(members[epoch], powers, strict=True)]
        vset_harness.store(epoch, set_data(vset_harness, entries, 10 * epoch + 1), sender=deployer)
    gpu_reward.set_consensus(market, sender=deployer)
    consensus_reward.set_consensus(vset_harness, sender=deployer)
    token.transfer(market, FUNDING, sender=deployer)
    token.approve(gpu_reward, 2**256 - 1, sender=deployer)
    # Both contracts start funded, so the first commits already book and release rewards.
    gpu_reward.fund_emission(INITIAL_EMISSION, sender=deployer)
    token.transfer(consensus_reward, INITIAL_CONSENSUS_FUNDS, sender=deployer)
    holders = [deployer, market, gpu_reward, consensus_reward, *validators, *earners]
    raw = RawCalls(chain.provider.web3)

    def balances(*who) -> list[int]:
        return raw.uints([(token.balanceOf, [h.address]) for h in who])

    supply_held = sum(balances(*holders))
    assert balances(market) == [token.balanceOf(market)] == [FUNDING]

    class RewardsMachine(RuleBasedStateMachine):
        @initialize()
        def start(self):
            self.snapshot = chain.snapshot()
            # GPUComputeReward model.
            self.earned = {str(a): 0 for a in earners}  # leaves of the current root
            self.tree = None
            self.paid = {str(a): 0 for a in earners}
            self.pool = INITIAL_EMISSION
            self.rate = EMISSION_PER_COMMIT
            self.gpu_in = INITIAL_EMISSION  # billed + emission funded
            # ConsensusReward model.
            self.height = 0
            self.commits = {}  # sealed height -> (epoch, signer indices, signer power)
            self.booked_through = 0
            self.claimed_heights = {str(v): set() for v in validators}
            self.cr_in = INITIAL_CONSENSUS_FUNDS
            self.booked = 0
            self.cr_paid = 0

        def teardown(self):
            chain.restore(self.snapshot)

        def has_root(self) -> bool:
            return self.tree is not None

        # --- GPUComputeReward ------------------------------------------------------------

        @rule(increments=st.lists(amounts, min_size=4, max_size=4), short=st.booleans())
        def update_root(self, increments, short):
            new = {a: self.earned[a] + inc for a, inc in zip(self.earned, increments, strict=True)}
            total = sum(new.values())
            released = min(self.rate, self.pool)
            unclaimed = total - sum(self.paid.values())
            backing = self.gpu_in - sum(self.paid.values()) - self.pool
            bill = max(0, unclaimed - backing - released)
            tree = tree_of(new)
            if short and bill > 0:
                # One wei short of funding: the root must be refused (logged, not reverted, so
                # the commit carrying it still lands), and the previous root stays.
                token.transfer(gpu_reward, bill - 1, sender=market)
                self.gpu_in += bill - 1
                previous = gpu_reward.rewards_root()
                receipt = gpu_reward.update_root(tree.root, total, sender=market)
                log = next(iter(gpu_reward.RootRefused.from_receipt(receipt)))
                assert log.reason == "root exceeds funding"
                assert gpu_reward.rewards_root() == previous
                return
            if bill:
                token.transfer(gpu_reward, bill, sender=market)
                self.gpu_in += bill
            receipt = gpu_reward.update_root(tree.root, total, sender=market)
            log = next(iter(gpu_reward.RootUpdated.from_receipt(receipt)))
            assert (log.emission_released, log.rewards_total) == (released, total)
            self.pool -= released
            self.earned, self.tree = new, tree

        @precondition(has_root)
        @rule(i=st.integers(0, 3))
        def claim(self, i):
            account, key = earners[i], str(earners[i])
            (before,) = balances(account)
            gpu_reward.claim(account, self.earned[key], self.tree.proofs[key], sender=earners[0])
            assert balances(account)[0] - before == self.earned[key] - self.paid[key]
            self.paid[key] = self.earned[key]

        @precondition(has_root)
        @rule(subset=st.lists(st.integers(0, 3), min_size=1, max_size=4, unique=True))
        def claim_many(self, subset):
            chosen = [earners[i] for i in subset]
            keys = [str(a) for a in chosen]
            befores = balances(*chosen)
            gpu_reward.claim_many(
                chosen,
                [self.earned[k] for k in keys],
                [self.tree.proofs[k] for k in keys],
                sender=market,
            )
            for key, before, after in zip(keys, befores, balances(*chosen), strict=True):
                assert after - before == self.earned[key] - self.paid[key]
                self.paid[key] = self.earned[key]

        @precondition(has_root)
        @rule(i=st.integers(0, 3), delta=st.integers(1, EMC))
        def claim_too_much(self, i, delta):
            key = str(earners[i])
            args = [earners[i].address, self.earned[key] + delta, self.tree.proofs[key]]
            raw.reverts(gpu_reward.claim, args, earners[i], "reward: invalid proof")

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
            vset_harness.seal(self.height, epoch, bitmap_of(indices), signer_power, sender=deployer)
            self.commits[self.height] = (epoch, indices, signer_power)

        def book_model(self):
            """What ConsensusReward.book does: every sealed height the unowed balance pays for
            in full, at the (constant) rate."""
            owed = self.booked - self.cr_paid
            count = min(self.height - self.booked_through, (self.cr_in - owed) // REWARD_PER_COMMIT)
            self.booked_through += count
            self.booked += count * REWARD_PER_COMMIT

        @rule()
        def book(self):
            consensus_reward.book(sender=deployer)
            self.book_model()

        @rule(amount=st.sampled_from([1, REWARD_PER_COMMIT, 2 * REWARD_PER_COMMIT + 7]))
        def fund_consensus(self, amount):
            token.transfer(consensus_reward, amount, sender=deployer)
            self.cr_in += amount

        @precondition(lambda self: self.commits)
        @rule(v=st.integers(0, 3), count=st.integers(1, 5))
        def consensus_claim(self, v, count):
            account, key = validators[v], str(validators[v])
            # The claim (and claimable, its view) books first.
            before_booking = (self.booked_through, self.booked)
            self.book_model()
            heights, indices, expected = [], [], 0
            for height, (epoch, signers, signer_power) in self.commits.items():
                if height > self.booked_through:
                    break
                if account not in members[epoch] or height in self.claimed_heights[key]:
                    continue
                index = members[epoch].index(account)
                if index in signers:
                    heights.append(height)
                    indices.append(index)
                    expected += REWARD_PER_COMMIT * EPOCH_POWERS[epoch][index] // signer_power
                if len(heights) == count:
                    break
            if not heights:
                self.booked_through, self.booked = before_booking
                return
            claimable = raw.uints(
                [(consensus_reward.claimable, [account.address, heights, indices])]
            )
            assert claimable == [expected]
            (before,) = balances(account)
            consensus_reward.claim(heights, indices, sender=account)
            assert balances(account)[0] - before == expected
            self.cr_paid += expected
            self.claimed_heights[key].update(heights)
            raw.reverts(
                consensus_reward.claim,
                [heights[:1], indices[:1]],
                account,
                "reward: already claimed",
            )

        @precondition(lambda self: self.commits)
        @rule(v=st.integers(0, 3))
        def consensus_claim_unsigned(self, v):
            account = validators[v]
            for height, (epoch, signers, _) in self.commits.items():
                if height > self.booked_through:
                    return
                if account in members[epoch] and members[epoch].index(account) not in signers:
                    index = members[epoch].index(account)
                    raw.reverts(
                        consensus_reward.claim, [[height], [index]], account, "reward: not a signer"
                    )
                    return

        # --- Invariants ------------------------------------------------------------------

        @invariant()
        def chain_matches_model_and_conserves_tokens(self):
            if not hasattr(self, "earned"):
                return
            held = balances(*holders)
            gpu_balance, cr_balance = held[2], held[3]
            views = raw.uints(
                [
                    (gpu_reward.emission_pool, []),
                    (gpu_reward.total_claimed, []),
                    (gpu_reward.rewards_total, []),
                    (consensus_reward.total_booked, []),
                    (consensus_reward.owed, []),
                    (consensus_reward.total_claimed, []),
                    *[(gpu_reward.claimed, [a.address]) for a in earners],
                ]
            )
            pool, gpu_claimed, rewards_total, booked, owed, cr_claimed = views[:6]
            claimed = dict(zip(self.paid, views[6:], strict=True))

            # Tokens are conserved: nothing created, nothing lost.
            assert sum(held) == supply_held
            assert gpu_balance == self.gpu_in - sum(self.paid.values())
            assert cr_balance == self.cr_in - self.cr_paid

            # No account is paid more than its leaf; unclaimed rewards stay backed.
            assert pool == self.pool
            for key, paid in self.paid.items():
                assert claimed[key] == paid <= self.earned[key]
            assert gpu_claimed == sum(self.paid.values()) <= rewards_total
            assert rewards_total == sum(self.earned.values())
            assert rewards_total - gpu_claimed <= gpu_balance - pool

            # Signers' shares sum to what was booked, less under one wei per signer.
            assert (booked, owed, cr_claimed) == (
                self.booked,
                self.booked - self.cr_paid,
                self.cr_paid,
            )
            assert cr_balance >= owed
            shares_total, dust_bound = 0, 0
            for height, (epoch, signers, signer_power) in self.commits.items():
                if height > self.booked_through:
                    break
                reward = REWARD_PER_COMMIT
                shares = sum(reward * EPOCH_POWERS[epoch][i] // signer_power for i in signers)
                assert reward - len(signers) < shares <= reward or reward == shares == 0
                shares_total += shares
                dust_bound += len(signers)
            assert self.booked - dust_bound <= shares_total <= self.booked
            assert self.cr_paid <= shares_total

    RewardsMachine.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        # Drawn afresh each run (no fixed seed, no example database to replay).
        derandomize=False,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    RewardsMachine.TestCase("runTest").runTest()
