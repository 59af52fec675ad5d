"""A Hypothesis state machine for ComputeMarket against a Python model of it.

Random sequences of deposits, withdrawal requests, withdrawals, proofs of spent, invocations billed
off-chain (within each user's headroom, as validators bill), commits, listings, purchases, stale
listings and time travel. After every step: every EMC is in a wallet, the market, or staking
(tokens are conserved); the market holds exactly the escrow not yet billed away; the chain agrees
with the model user by user; and each user's wallet plus unbilled escrow equals its funding less
what it was billed and paid for sockets (no user loses escrow that was not billed).
"""

from dataclasses import dataclass

import ape
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.contracts.helpers import EMC, INITIAL_SUPPLY, single_event
from tests.contracts.market.helpers import WITHDRAW_DELAY, billing_proof, billing_root, fee_of

FUNDING = 1_000 * EMC


@dataclass
class ModelUser:
    escrow: int = 0  # the contract's escrow (less spending applied)
    settled: int = 0  # cumulative spent applied
    committed: int = 0  # cumulative spent in the latest root
    pending: int = 0  # billed off-chain, not yet committed
    requested: int = 0
    unlock: int = 0
    requested_at_commit: int = 0  # the withdrawal waits for a later commit
    in_roots: bool = False  # deposited: every root holds it
    billable_from: int = 0
    wallet_expected: int = FUNDING  # funding - billed - paid for sockets, plus unbilled escrow

    def headroom(self) -> int:
        """Escrow validators may still bill: free escrow less the withdrawal request."""
        return self.escrow - (self.committed - self.settled) - self.pending - self.requested


amounts = st.integers(min_value=1, max_value=400 * EMC)


@pytest.mark.usefixtures("wired_market")
@pytest.mark.parametrize(
    "examples, steps",
    [pytest.param(4, 15, id="quick"), pytest.param(25, 30, id="long", marks=pytest.mark.slow)],
)
def test_market_state_machine(
    examples,
    steps,
    chain,
    deployer,
    token,
    staking,
    sockets,
    market,
    accounts,
    compute_node,
    consensus,
    treasury,
    router_owner,
    reward_sink,
):
    users = [accounts[7], accounts[8], accounts[2]]
    for account in users:
        token.transfer(account, FUNDING, sender=deployer)
        token.approve(market, 2**256 - 1, sender=account)
        sockets.setApprovalForAll(market, True, sender=account)
    sockets.setApprovalForAll(market, True, sender=compute_node)
    # Every account that can hold EMC here; the others never receive any.
    holders = {
        a.address for a in (deployer, *users, compute_node, treasury, router_owner, reward_sink)
    }
    holders |= {market.address, staking.address}

    class MarketMachine(RuleBasedStateMachine):
        @initialize()
        def start(self):
            self.snapshot = chain.snapshot()
            self.model = {u.address: ModelUser() for u in users}
            self.commits = 0
            self.spent_tree: dict[str, int] = {}
            self.listed: dict[int, tuple[str, int]] = {}  # token id -> (seller, price)
            self.socket_wallets = {u.address: 0 for u in users}

        def teardown(self):
            chain.restore(self.snapshot)

        # --- escrow ---

        @rule(i=st.integers(0, 2), amount=amounts)
        def deposit(self, i, amount):
            account, m = users[i], self.model[users[i].address]
            if amount > token.balanceOf(account):
                with ape.reverts("erc20: transfer amount exceeds balance"):
                    market.deposit(amount, sender=account)
                return
            market.deposit(amount, sender=account)
            m.escrow += amount
            if not m.in_roots:
                m.in_roots, m.billable_from = True, self.commits + 1

        @rule(i=st.integers(0, 2), fraction=st.floats(0.0, 1.2))
        def request_withdraw(self, i, fraction):
            account, m = users[i], self.model[users[i].address]
            amount = int(m.escrow * fraction)
            if amount == 0:
                with ape.reverts("market: zero amount"):
                    market.request_withdraw(0, sender=account)
            elif amount > m.escrow:
                with ape.reverts("market: exceeds escrow"):
                    market.request_withdraw(amount, sender=account)
            else:
                receipt = market.request_withdraw(amount, sender=account)
                m.requested = amount
                m.unlock = chain.blocks[receipt.block_number].timestamp + WITHDRAW_DELAY
                m.requested_at_commit = self.commits

        def _proof_args(self, account, m):
            if m.in_roots and self.commits >= m.billable_from:
                return m.committed, billing_proof(self.spent_tree, account.address)
            return m.settled, []

        @rule(i=st.integers(0, 2))
        def withdraw(self, i):
            account, m = users[i], self.model[users[i].address]
            if m.requested == 0:
                with ape.reverts("market: no withdrawal requested"):
                    market.withdraw(0, [], sender=account)
                return
            if chain.pending_timestamp < m.unlock:
                with ape.reverts("market: withdraw delay not over"):
                    market.withdraw(*self._proof_args(account, m), sender=account)
                return
            if self.commits <= m.requested_at_commit:
                with ape.reverts("market: awaiting a commit"):
                    market.withdraw(*self._proof_args(account, m), sender=account)
                return
            before = token.balanceOf(account)
            proving = m.in_roots and self.commits >= m.billable_from
            receipt = market.withdraw(*self._proof_args(account, m), sender=account)
            if proving:
                self._apply(m)
            paid = min(m.requested, m.escrow)
            assert single_event(receipt, market.Withdrawn).amount == paid
            assert token.balanceOf(account) == before + paid
            m.escrow -= paid
            m.requested = 0

        @rule(i=st.integers(0, 2))
        def prove_spent(self, i):
            account, m = users[i], self.model[users[i].address]
            if not (m.in_roots and self.commits >= m.billable_from):
                return
            market.prove_spent(
                account,
                m.committed,
                billing_proof(self.spent_tree, account.address),
                sender=users[0],
            )
            self._apply(m)

        def _apply(self, m):
            applied = min(m.committed - m.settled, m.escrow)
            assert applied == m.committed - m.settled, "an honest root never bills beyond escrow"
            m.escrow -= applied
            m.settled = m.committed

        # --- billing ---

        @rule(i=st.integers(0, 2), fraction=st.floats(0.0, 1.0))
        def invoke(self, i, fraction):
            """An invocation record validators accept: billed within the user's headroom."""
            m = self.model[users[i].address]
            amount = int(max(m.headroom(), 0) * fraction)
            m.pending += amount
            m.wallet_expected -= amount

        @rule()
        def commit(self):
            total = sum(m.pending for m in self.model.values())
            for address, m in self.model.items():
                m.committed += m.pending
                m.pending = 0
                if m.in_roots:
                    self.spent_tree[address] = m.committed
            if not self.spent_tree:
                return
            market.settle(total, billing_root(self.spent_tree), sender=consensus)
            self.commits += 1

        @rule(seconds=st.sampled_from([1, WITHDRAW_DELAY - 1, WITHDRAW_DELAY, 1_000]))
        def time_travel(self, seconds):
            chain.pending_timestamp += seconds

        # --- sockets ---

        @rule(price=st.integers(1, 50 * EMC))
        def mint_and_list(self, price):
            receipt = sockets.mint(
                compute_node,
                "matmul-f32",
                10,
                10**12,
                chain.pending_timestamp + 10**6,
                100,
                "",
                sender=compute_node,
            )
            token_id = single_event(receipt, sockets.SocketMinted).token_id
            market.list_socket(token_id, price, sender=compute_node)
            self.listed[token_id] = (compute_node.address, price)

        @precondition(lambda self: bool(self.listed))
        @rule(i=st.integers(0, 2), pick=st.integers(0, 10**6))
        def buy(self, i, pick):
            account = users[i]
            token_id = sorted(self.listed)[pick % len(self.listed)]
            seller, price = self.listed[token_id]
            holder = sockets.ownerOf(token_id)
            if seller == account.address:
                with ape.reverts("market: own listing"):
                    market.buy(token_id, price, sender=account)
            elif holder != seller:
                with ape.reverts("market: stale listing"):
                    market.buy(token_id, price, sender=account)
            elif price > token.balanceOf(account):
                with ape.reverts("erc20: transfer amount exceeds balance"):
                    market.buy(token_id, price, sender=account)
            else:
                treasury_before = token.balanceOf(treasury)
                market.buy(token_id, price, sender=account)
                assert token.balanceOf(treasury) == treasury_before + fee_of(price)
                del self.listed[token_id]
                self.model[account.address].wallet_expected -= price
                if seller in self.model:
                    self.model[seller].wallet_expected += price - fee_of(price)

        @rule(i=st.integers(0, 2), price=st.integers(1, 50 * EMC))
        def relist_owned(self, i, price):
            account = users[i]
            if sockets.balanceOf(account) == 0:
                return
            token_id = sockets.tokenOfOwnerByIndex(account, 0)
            market.list_socket(token_id, price, sender=account)
            self.listed[token_id] = (account.address, price)

        @precondition(lambda self: bool(self.listed))
        @rule(pick=st.integers(0, 10**6))
        def move_listed_away(self, pick):
            """The seller's socket leaves it: the listing goes stale."""
            token_id = sorted(self.listed)[pick % len(self.listed)]
            holder = sockets.ownerOf(token_id)
            holder_account = next(
                a for a in [compute_node, *users, router_owner] if a.address == holder
            )
            if holder_account == router_owner:
                return
            sockets.transferFrom(holder, router_owner, token_id, sender=holder_account)

        # --- invariants ---

        @invariant()
        def conserved_and_matching(self):
            """One invariant (each chain read costs a round trip): conservation, escrow, users."""
            if not hasattr(self, "model"):
                return
            assert sum(token.balanceOf(h) for h in holders) == INITIAL_SUPPLY, (
                "tokens are conserved"
            )
            unbilled = sum(m.escrow - (m.committed - m.settled) for m in self.model.values())
            assert token.balanceOf(market) == market.unbilled_escrow() == unbilled
            for account in users:
                m = self.model[account.address]
                assert (market.escrow(account), market.spent_settled(account)) == (
                    m.escrow,
                    m.settled,
                )
                assert market.withdrawal_requested(account) == m.requested
                unbilled = m.escrow - (m.committed - m.settled) - m.pending
                assert token.balanceOf(account) + unbilled == m.wallet_expected, (
                    "no unbilled escrow is lost"
                )

    MarketMachine.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        # Drawn afresh each run (no fixed seed, no example database to replay).
        derandomize=False,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    MarketMachine.TestCase("runTest").runTest()
