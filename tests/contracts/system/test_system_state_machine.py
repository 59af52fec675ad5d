"""The whole system under random use: a Hypothesis state machine over the contracts deployed by
the deploy script (`offchain/chain/deploy.py` runs `ape run deploy`), with real BLS seals.

Actors deposit, ask to withdraw and withdraw escrow; validators unstake, come back, withdraw
stake, sign quorum commits (and sometimes fail to reach a quorum) and once in a while
double-sign and get reported; a worker claims its rewards; the owner changes the withdraw delay
through the timelock; time passes. After every step: every EMC is in a wallet or a contract
(against `totalSupply()`); staking and the market hold exactly what their books say; escrow
moved only by a quorum-signed commit; nobody claimed more than was committed to them; and every
user's escrow is its deposits less its withdrawals and its own bills (no user pays another's).
A slash never exceeds the stake, checked where it happens.

Examples are drawn afresh on every run (no seed, no example database): 50 per run in CI, 300
with --runslow.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

import ape
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from offchain.chain.deploy import deploy_contracts
from offchain.crypto import bls
from offchain.protocol.billing import billing_proof, build_billing_tree
from offchain.protocol.commit import Commit, commit_digest
from offchain.protocol.rewards import rewards_tree

EMC = 10**18
STAKE = 10_000 * EMC  # the deploy script's minimum validator stake
FUNDING = 1_000 * EMC
ZERO = b"\x00" * 32
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


@dataclass
class User:
    deposited: int = 0
    withdrawn: int = 0
    committed: int = 0  # cumulative spent in the latest billing root
    requested: int = 0


@pytest.fixture(scope="module")
def deployed(project, chain, accounts):
    """The contracts as `ape run deploy` leaves them, four validators and three funded users."""
    with tempfile.TemporaryDirectory() as tmp:
        record = deploy_contracts(
            chain.provider.uri, fresh=True, deployments_dir=Path(tmp), abi_dir=Path(tmp)
        )
    c = {name: getattr(project, name).at(address) for name, address in record["contracts"].items()}
    deployer = accounts[0]
    secrets = {}
    for i in range(4):
        account = accounts[10 + i]
        secret = bls.keygen(f"system-v{i}".encode())
        c["EMCToken"].transfer(account, 2 * STAKE, sender=deployer)
        c["EMCToken"].approve(c["Staking"], 2**256 - 1, sender=account)
        c["Staking"].stake(1, STAKE, sender=account)
        c["Staking"].register_validator(
            bls.pubkey_to_eip2537(bls.public_key(secret)),
            bls.signature_to_eip2537(bls.prove_possession(secret, account.address)),
            sender=account,
        )
        secrets[account.address] = secret
    c["ComputeConsensus"].bootstrap(sender=deployer)
    users = [accounts[14], accounts[15], accounts[16]]
    for user in users:
        c["EMCToken"].transfer(user, FUNDING, sender=deployer)
        c["EMCToken"].approve(c["ComputeMarket"], 2**256 - 1, sender=user)
    return c, secrets, users


def _seal(digest: bytes, secrets: list[int]) -> bytes:
    """One signature by the sum of the secrets: the aggregate of their signatures (BLS)."""
    return bls.signature_to_eip2537(bls.sign(sum(secrets) % CURVE_ORDER, digest))


@pytest.mark.parametrize(
    "examples, steps",
    [pytest.param(50, 5, id="ci"), pytest.param(300, 12, id="long", marks=pytest.mark.slow)],
)
def test_system_state_machine(examples, steps, deployed, chain, accounts):
    c, secrets, users = deployed
    token, staking, market = c["EMCToken"], c["Staking"], c["ComputeMarket"]
    gpu, consensus, timelock = c["GPUComputeReward"], c["ComputeConsensus"], c["Timelock"]
    deployer, worker, reporter = accounts[0], accounts[17], accounts[18]
    validators = [accounts[10 + i] for i in range(4)]
    holders = [a.address for a in (deployer, worker, reporter, *validators, *users)]
    holders += [c[name].address for name in c]
    # The invariant reads through plain web3 (a few ms a call, where Ape's call path costs more).
    w3 = chain.provider.web3

    def raw(contract):
        abi = [entry.model_dump(by_alias=True, mode="json") for entry in contract.contract_type.abi]
        return w3.eth.contract(address=contract.address, abi=abi).functions

    r_token, r_staking, r_market, r_gpu = raw(token), raw(staking), raw(market), raw(gpu)

    class System(RuleBasedStateMachine):
        @initialize()
        def start(self):
            self.snapshot = chain.snapshot()
            self.users = {u.address: User() for u in users}
            self.moved = 0  # escrow moved to rewards by quorum commits
            self.earned = 0  # the worker's cumulative earnings in the latest installed root
            self.last_signers = 0
            self.delay = market.withdraw_delay()

        def teardown(self):
            chain.restore(self.snapshot)

        # --- escrow ---

        @rule(i=st.integers(0, 2), amount=st.integers(1, 300 * EMC))
        def deposit(self, i, amount):
            user, m = users[i], self.users[users[i].address]
            if amount > token.balanceOf(user):
                with ape.reverts("erc20: transfer amount exceeds balance"):
                    market.deposit(amount, sender=user)
                return
            market.deposit(amount, sender=user)
            m.deposited += amount

        @rule(i=st.integers(0, 2), fraction=st.floats(0.01, 1.0))
        def request_withdraw(self, i, fraction):
            user, m = users[i], self.users[users[i].address]
            escrow = market.escrow(user)
            amount = int(escrow * fraction)
            if amount == 0:
                return
            market.request_withdraw(amount, sender=user)
            m.requested = amount

        @rule(i=st.integers(0, 2))
        def withdraw(self, i):
            user, m = users[i], self.users[users[i].address]
            if m.requested == 0:
                return
            if chain.pending_timestamp < market.withdrawable_at(user):
                with ape.reverts("market: withdraw delay not over"):
                    market.withdraw(0, [], sender=user)
                return
            if market.commit_count() <= market.requested_at_commit(user):
                with ape.reverts("market: awaiting a commit"):
                    market.withdraw(0, [], sender=user)
                return
            if market.proof_required(user):
                args = (m.committed, billing_proof(self._spent(), user.address)[1])
            else:
                args = (market.spent_settled(user), [])
            before = token.balanceOf(user)
            market.withdraw(*args, sender=user)
            paid = token.balanceOf(user) - before
            free = m.deposited - m.withdrawn - m.committed
            assert paid == min(m.requested, free)
            m.withdrawn += paid
            m.requested = 0

        # --- consensus ---

        def _spent(self) -> dict[str, int]:
            return {a: m.committed for a, m in self.users.items() if m.deposited}

        def _members(self):
            epoch = consensus.current_epoch()
            count = consensus.epoch_header(epoch)[2]
            return [consensus.epoch_member(epoch, i) for i in range(count)]

        @rule(fractions=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3), fail=st.booleans())
        def commit(self, fractions, fail):
            members = self._members()
            total = sum(power for power, _ in members)
            signers, power = [], 0
            for index, (member_power, _) in enumerate(members):
                if power >= total * 2 // 3 + 1:
                    break
                signers.append(index)
                power += member_power
            if fail:
                signers = signers[:-1]  # one short of the quorum
            # Validators bill each user within its escrow less its withdrawal request.
            bills = {}
            for user, fraction in zip(users, fractions, strict=True):
                m = self.users[user.address]
                headroom = max(0, m.deposited - m.withdrawn - m.committed - m.requested)
                bills[user.address] = int(headroom * fraction)
            spent = {a: m.committed + bills[a] for a, m in self.users.items() if m.deposited}
            billed = sum(bills.values())
            earned = self.earned + billed
            tree = rewards_tree({worker.address: earned}) if earned else None
            height = consensus.last_height() + 1
            commit = Commit(
                height=height,
                batch_root=height.to_bytes(32, "big"),
                billing_root=build_billing_tree(spent)[0].root if spent else ZERO,
                rewards_root=tree.root if tree else ZERO,
                rewards_total=earned,
                billed_total=billed,
                parent_signers=0 if height == 1 else self.last_signers,
            )
            digest = commit_digest(commit, chain.chain_id, consensus.address)
            signature = _seal(digest, [secrets[members[i][1]] for i in signers])
            bitmap = sum(1 << i for i in signers)
            args = (
                height, commit.batch_root, commit.billing_root, commit.rewards_root, earned,
                [], billed, commit.parent_signers, bitmap, signature,
            )  # fmt: skip
            market_before = token.balanceOf(market)
            if fail:
                with ape.reverts("consensus: quorum not met"):
                    consensus.commit(*args, sender=deployer)
                assert token.balanceOf(market) == market_before, "no escrow moves without quorum"
                return
            consensus.commit(*args, sender=deployer)
            assert token.balanceOf(market) == market_before - billed
            self.moved += billed
            self.earned = earned
            self.last_signers = bitmap
            for address, bill in bills.items():
                self.users[address].committed += bill

        @precondition(lambda self: self.earned > 0)
        @rule()
        def claim(self):
            before, claimed = token.balanceOf(worker), gpu.claimed(worker)
            tree = rewards_tree({worker.address: self.earned})
            gpu.claim(worker, self.earned, tree.proofs[worker.address], sender=worker)
            assert token.balanceOf(worker) - before == self.earned - claimed
            assert gpu.claimed(worker) == self.earned, "claims reach what was committed"

        @rule(v=st.integers(0, 3))
        def double_sign_reported(self, v):
            validator = validators[v]
            height = consensus.last_height() + 1
            epoch = consensus.current_epoch()
            members = [a for _, a in self._members()]
            a = Commit(height, b"\x01" * 32, ZERO, ZERO, self.earned, (), 0)
            b = Commit(height, b"\x02" * 32, ZERO, ZERO, self.earned, (), 0)
            fields = []
            for commit in (a, b):
                digest = commit_digest(commit, chain.chain_id, consensus.address)
                fields.append(
                    (
                        (height, commit.batch_root, ZERO, ZERO, self.earned,
                         consensus.registry_hash([]), 0, 0),
                        _seal(digest, [secrets[validator.address]]),
                    )
                )  # fmt: skip
            evidence = (validator, fields[0][0], fields[0][1], fields[1][0], fields[1][1])
            if validator.address not in members:
                with ape.reverts("consensus: not a member at that height"):
                    consensus.report_double_sign(*evidence, sender=reporter)
                return
            if consensus.evidence_used(_evidence_id(validator.address, height)):
                return
            at_stake = staking.staked(validator) + staking.pending_withdrawal(validator)
            receipt = consensus.report_double_sign(*evidence, sender=reporter)
            slashed = consensus.DoubleSignSlashed.from_receipt(receipt)[0].slashed
            assert slashed <= at_stake, "a slash never exceeds the stake"
            assert staking.staked(validator) + staking.pending_withdrawal(validator) == (
                at_stake - slashed
            )
            assert epoch == consensus.current_epoch()

        @rule(v=st.integers(0, 3))
        def unstake(self, v):
            validator = validators[v]
            staked = staking.staked(validator)
            if staked == 0:
                return
            staking.request_unstake(staked, sender=validator)
            assert staking.seat(validator) == 0

        @rule(v=st.integers(0, 3))
        def withdraw_stake(self, v):
            validator = validators[v]
            if staking.pending_withdrawal(validator) == 0:
                return
            if chain.pending_timestamp < staking.withdrawable_at(validator):
                with ape.reverts("staking: still unbonding"):
                    staking.withdraw(sender=validator)
            elif consensus.is_current_member(validator):
                with ape.reverts("staking: in the current validator set"):
                    staking.withdraw(sender=validator)
            else:
                staking.withdraw(sender=validator)

        @rule(v=st.integers(0, 3))
        def come_back(self, v):
            validator = validators[v]
            if staking.staked(validator) != 0 or token.balanceOf(validator) < STAKE:
                return
            staking.stake(1, STAKE, sender=validator)
            staking.take_seat(sender=validator)

        # --- governance and time ---

        @rule(delay=st.integers(1, 600))
        def set_withdraw_delay_through_timelock(self, delay):
            with ape.reverts("ownable: caller is not the owner"):
                market.set_withdraw_delay(delay, sender=deployer)
            payload = market.set_withdraw_delay.as_transaction(delay, sender=deployer).data
            salt = chain.pending_timestamp.to_bytes(32, "big")
            minimum = timelock.get_minimum_delay()
            timelock.schedule(market, 0, payload, ZERO, salt, minimum, sender=deployer)
            chain.pending_timestamp += minimum
            timelock.execute(market, 0, payload, ZERO, salt, sender=deployer)
            assert market.withdraw_delay() == delay

        @rule(seconds=st.integers(1, 400))
        def time_passes(self, seconds):
            chain.pending_timestamp += seconds

        # --- invariants ---

        @invariant()
        def books_balance(self):
            if not hasattr(self, "users"):
                return
            balance = {h: r_token.balanceOf(h).call() for h in holders}
            assert sum(balance.values()) == r_token.totalSupply().call(), (
                "every EMC is in a wallet, stake, escrow or a reward contract"
            )
            assert (
                balance[staking.address]
                == r_staking.total_staked().call() + r_staking.total_pending().call()
            )
            deposits = sum(m.deposited - m.withdrawn for m in self.users.values())
            assert balance[market.address] == deposits - self.moved, (
                "escrow moved only by quorum-signed commits"
            )
            assert r_gpu.total_claimed().call() <= r_gpu.rewards_total().call() == self.earned
            assert r_gpu.claimed(worker.address).call() <= self.earned, (
                "nobody claims more than was committed"
            )
            for user in users:
                m = self.users[user.address]
                settled = r_market.spent_settled(user.address).call()
                unapplied = m.committed - settled if m.deposited else 0
                escrow = r_market.escrow(user.address).call()
                assert escrow - unapplied == m.deposited - m.withdrawn - m.committed, (
                    "a user's escrow pays only its own bills"
                )

    System.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=False,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    System.TestCase("runTest").runTest()


def _evidence_id(validator: str, height: int) -> bytes:
    from eth_abi import encode

    from offchain.crypto.hashing import keccak

    return keccak(encode(["address", "uint256"], [validator, height]))
