"""The whole system under random use: a Hypothesis state machine over the contracts deployed by
`offchain/chain/deploy.py` (the deployment `ape run deploy` also runs), with real BLS seals.

The set-up stakes a compute node that declares a workload (the deployment has none), funds three
users and a fifth validator that has not registered yet; every example starts with socket #1
held and listed by the node and a next key announced by validator 0, so a sale and a key
activation are within reach of a short run. Actors deposit, ask to withdraw and withdraw
escrow; the compute node mints sockets (to itself or to a user, listed or not), holders list
them at a price and hand them on (which leaves a listing stale), users buy listed sockets;
validators unstake, come back, withdraw stake, sign quorum commits (and sometimes fail to: one
signer short of a quorum, or a signer sealing with a key its set does not hold), commit empty
batches to the end of an epoch so the next set takes over, and once in a while double-sign and
get reported; the fifth validator stakes and registers its BLS key, and validators announce new
keys and activate them after the rotation delay, each with a proof of possession bound to its
own address (one bound to another address, or a key already taken, is refused); a worker claims
its rewards; the owner changes the withdraw delay, the protocol fee and the treasury (the
deployer or a second account) through the timelock; time passes.

After every step: every EMC is in a wallet, in stake, in escrow or in a contract (against
`totalSupply()`), and the wallets of the users, the compute node and both possible treasuries
hold exactly their funding less deposits and socket purchases plus withdrawals, sale proceeds
(price less fee) and protocol fees (to the treasury of the moment); staking and the market hold
exactly what their books say; escrow moved only by quorum-signed commits; nobody claimed more
than was committed to them; every user's escrow is its deposits less its withdrawals and its
own bills (no user pays another's); every socket has exactly one holder, the one the model
expects (a sold socket its buyer), and every listing is the one the model expects (a bought one
cleared); every validator's key is the one it registered or activated, never an announced key
before its delay. Where they happen: a slash never exceeds the stake; a sale pays the seller
the price less the fee and the treasury the fee; a stale listing, an early key activation, a
commit sealed with a key its set does not hold and a commit short of a quorum all revert and
move nothing; once an epoch ends, a key activated before it seals and the key it replaced no
longer does.

Examples are drawn afresh on every run (no seed, no example database): 50 of up to 7 steps per
run in CI, 200 of up to 10 steps with --runslow.
"""

import functools
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
NODE_STAKE = 100 * EMC  # its minimum compute stake
FUNDING = 1_000 * EMC
ZERO = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
ROLE_VALIDATOR, ROLE_COMPUTE = 1, 4
KEY_ROTATION_DELAY = 86_400  # Staking's
BPS = 10_000
WORKLOAD = "matmul-f32"
LISTED_PRICE = 50 * EMC  # socket #1's price at the start of every example


@dataclass
class User:
    deposited: int = 0
    withdrawn: int = 0
    committed: int = 0  # cumulative spent in the latest billing root
    requested: int = 0


@dataclass
class Deployed:
    contracts: dict
    secrets: dict  # each registered validator's BLS secret
    users: list
    node: object  # a staked compute node that declares WORKLOAD
    joiner: object  # staked nothing, registered no key yet
    joiner_secret: int
    treasury: object  # where governance may move the protocol fee
    next_key: int  # the key validator 0 announced


# Keys and proofs repeat from example to example (each starts from the same chain snapshot):
# computed once each.
@functools.cache
def _key(secret: int) -> bytes:
    return bls.pubkey_to_eip2537(bls.public_key(secret))


@functools.cache
def _possession(secret: int, address: str) -> bytes:
    return bls.signature_to_eip2537(bls.prove_possession(secret, address))


@functools.cache
def _rotation_secret(n: int) -> int:
    return bls.keygen(f"system-rotation-{n}".encode())


@pytest.fixture(scope="module")
def deployed(project, chain, accounts):
    """The contracts as `ape run deploy` leaves them, four validators, three funded users, a
    compute node and a fifth validator still to register."""
    with tempfile.TemporaryDirectory() as tmp:
        record = deploy_contracts(
            chain.provider.uri, fresh=True, deployments_dir=Path(tmp), abi_dir=Path(tmp)
        )
    c = {name: getattr(project, name).at(address) for name, address in record["contracts"].items()}
    token, staking = c["EMCToken"], c["Staking"]
    deployer = accounts[0]
    secrets = {}
    for i in range(4):
        account = accounts[10 + i]
        secret = bls.keygen(f"system-v{i}".encode())
        token.transfer(account, 2 * STAKE, sender=deployer)
        token.approve(staking, 2**256 - 1, sender=account)
        staking.stake(ROLE_VALIDATOR, STAKE, sender=account)
        staking.register_validator(
            _key(secret), _possession(secret, account.address), sender=account
        )
        secrets[account.address] = secret
    c["ComputeConsensus"].bootstrap(sender=deployer)
    joiner = accounts[8]
    token.transfer(joiner, 2 * STAKE, sender=deployer)
    token.approve(staking, 2**256 - 1, sender=joiner)
    # The deployment stakes no compute node: one stakes and declares its workload here.
    node = accounts[19]
    if not staking.is_active(node, ROLE_COMPUTE):
        token.transfer(node, NODE_STAKE, sender=deployer)
        token.approve(staking, NODE_STAKE, sender=node)
        staking.stake(ROLE_COMPUTE, NODE_STAKE, sender=node)
        staking.declare_node("H100", 80_000, 1_000, [WORKLOAD], sender=node)
    users = [accounts[14], accounts[15], accounts[16]]
    for user in users:
        token.transfer(user, FUNDING, sender=deployer)
        token.approve(c["ComputeMarket"], 2**256 - 1, sender=user)
    for holder in (node, *users):
        c["ComputeSocket"].setApprovalForAll(c["ComputeMarket"], True, sender=holder)
    # Each example starts with a sale and a key activation within reach: the node holds socket
    # #1 and lists it, and validator 0 has announced its next key.
    c["ComputeSocket"].mint(
        node, WORKLOAD, 10, 10**12, chain.pending_timestamp + 10**8, 100, "", sender=node
    )
    c["ComputeMarket"].list_socket(1, LISTED_PRICE, sender=node)
    next_key = bls.keygen(b"system-v0-next")
    staking.rotate_key(
        _key(next_key), _possession(next_key, accounts[10].address), sender=accounts[10]
    )
    return Deployed(
        c, secrets, users, node, joiner, bls.keygen(b"system-v4"), accounts[9], next_key
    )


def _seal(digest: bytes, secrets: list[int]) -> bytes:
    """One signature by the sum of the secrets: the aggregate of their signatures (BLS)."""
    if not secrets:
        return b"\x00" * 256  # no signer: the quorum check refuses it before any signature
    return bls.signature_to_eip2537(bls.sign(sum(secrets) % CURVE_ORDER, digest))


@pytest.mark.parametrize(
    "examples, steps",
    [pytest.param(50, 7, id="ci"), pytest.param(200, 10, id="long", marks=pytest.mark.slow)],
)
def test_system_state_machine(examples, steps, deployed, chain, accounts):
    c, users, node = deployed.contracts, deployed.users, deployed.node
    token, staking, market = c["EMCToken"], c["Staking"], c["ComputeMarket"]
    gpu, consensus, timelock = c["GPUComputeReward"], c["ComputeConsensus"], c["Timelock"]
    sockets = c["ComputeSocket"]
    deployer, worker, reporter = accounts[0], accounts[17], accounts[18]
    joiner, treasury = deployed.joiner, deployed.treasury
    validators = [accounts[10 + i] for i in range(4)] + [joiner]
    holders_of_sockets = [node, *users]  # the only accounts sockets go to
    # The accounts whose EMC only the market moves: the model books each one's wallet.
    booked = [node, *users, deployer, treasury]
    account_of = {a.address: a for a in (*validators, *booked)}
    holders = [a.address for a in (deployer, worker, reporter, treasury, node, *validators, *users)]
    holders += [c[name].address for name in c]
    epoch_length = consensus.epoch_length()
    # The invariant reads through plain web3, in one batch (Ape's call path costs more a call).
    w3 = chain.provider.web3

    def raw(contract):
        abi = [entry.model_dump(by_alias=True, mode="json") for entry in contract.contract_type.abi]
        return w3.eth.contract(address=contract.address, abi=abi).functions

    r_token, r_staking, r_market, r_gpu = raw(token), raw(staking), raw(market), raw(gpu)
    r_sockets, r_consensus = raw(sockets), raw(consensus)

    def read_all(calls: dict) -> dict:
        """Every call in one JSON-RPC batch: one round trip instead of one per read."""
        with w3.batch_requests() as batch:
            for call in calls.values():
                batch.add(call)
            return dict(zip(calls, batch.execute(), strict=True))

    class System(RuleBasedStateMachine):
        @initialize()
        def start(self):
            self.snapshot = chain.snapshot()
            self.users = {u.address: User() for u in users}
            self.moved = 0  # escrow moved to rewards by quorum commits
            self.earned = 0  # the worker's cumulative earnings in the latest installed root
            self.last_signers = 0
            self.delay = market.withdraw_delay()
            # Keys: the one Staking holds per validator, announced ones (secret, active from),
            # and the ones each epoch's set was installed with.
            self.keys = dict(deployed.secrets)
            v0 = validators[0].address
            self.announced = {v0: (deployed.next_key, staking.key_active_at(v0))}
            self.set_keys = {0: dict(deployed.secrets)}
            self.rotations = 0
            self.epoch_due = False  # something changed that the next set will show
            # Sockets: holder and transfer count by id, listings (seller, price, transfer count).
            self.holder = {1: node.address}
            self.transfers = {1: 0}
            self.listings = {1: (node.address, LISTED_PRICE, 0)}
            self.fee_bps = market.fee_bps()
            self.treasury = market.treasury()
            self.wallets = {a.address: r_token.balanceOf(a.address).call() for a in booked}

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
            self.wallets[user.address] -= amount

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
            self.wallets[user.address] += paid

        # --- sockets ---

        @rule(to=st.integers(0, 3), list_price=st.none() | st.integers(1, 200 * EMC))
        def mint_socket(self, to, list_price):
            """The compute node mints a socket to itself or to a user, listed or not."""
            holder = holders_of_sockets[to]
            receipt = sockets.mint(
                holder, WORKLOAD, 10, 10**12, chain.pending_timestamp + 10**8, 100, "", sender=node
            )
            token_id = sockets.SocketMinted.from_receipt(receipt)[0].token_id
            assert token_id == len(self.holder) + 1
            self.holder[token_id] = holder.address
            self.transfers[token_id] = 0
            if list_price is not None:
                self._list(token_id, list_price)

        def _list(self, token_id, price):
            seller = self.holder[token_id]
            market.list_socket(token_id, price, sender=account_of[seller])
            self.listings[token_id] = (seller, price, self.transfers[token_id])

        def _pick(self, keys, pick):
            return sorted(keys)[pick % len(keys)]

        @rule(pick=st.integers(0, 2**16), price=st.integers(1, 200 * EMC))
        def list_socket(self, pick, price):
            """A holder lists its socket (replacing any earlier listing of it)."""
            self._list(self._pick(self.holder, pick), price)

        @rule(pick=st.integers(0, 2**16), to=st.integers(0, 3))
        def give_socket(self, pick, to):
            """A holder hands its socket on (to itself too): a listing of it goes stale."""
            token_id = self._pick(self.holder, pick)
            holder, recipient = self.holder[token_id], holders_of_sockets[to]
            sockets.transferFrom(holder, recipient, token_id, sender=account_of[holder])
            self.holder[token_id] = recipient.address
            self.transfers[token_id] += 1

        @precondition(lambda self: self.listings)
        @rule(i=st.integers(0, 2), pick=st.integers(0, 2**16))
        def buy_socket(self, i, pick):
            buyer = users[i]
            token_id = self._pick(self.listings, pick)
            seller, price, count = self.listings[token_id]
            stale = self.holder[token_id] != seller or self.transfers[token_id] != count
            if seller == buyer.address:
                with ape.reverts("market: own listing"):
                    market.buy(token_id, price, sender=buyer)
                return
            if stale:
                with ape.reverts("market: stale listing"):
                    market.buy(token_id, price, sender=buyer)
                return
            if price > self.wallets[buyer.address]:
                with ape.reverts("erc20: transfer amount exceeds balance"):
                    market.buy(token_id, price, sender=buyer)
                return
            fee = price * self.fee_bps // BPS
            parties = (buyer.address, seller, self.treasury)
            before = {a: token.balanceOf(a) for a in parties}
            receipt = market.buy(token_id, price, sender=buyer)
            assert market.Sold.from_receipt(receipt)[0].fee == fee
            assert token.balanceOf(seller) - before[seller] == price - fee, (
                "the seller receives the price less the fee"
            )
            assert token.balanceOf(self.treasury) - before[self.treasury] == fee
            assert before[buyer.address] - token.balanceOf(buyer) == price
            assert sockets.ownerOf(token_id) == buyer.address, "a sold socket belongs to its buyer"
            self.wallets[buyer.address] -= price
            self.wallets[seller] += price - fee
            self.wallets[self.treasury] += fee
            self.holder[token_id] = buyer.address
            self.transfers[token_id] += 1
            del self.listings[token_id]

        # --- consensus ---

        def _spent(self) -> dict[str, int]:
            return {a: m.committed for a, m in self.users.items() if m.deposited}

        def _members(self, epoch=None):
            """The (power, address) of each member of `epoch`'s set (by default the current)."""
            epoch = r_consensus.current_epoch().call() if epoch is None else epoch
            count = r_consensus.epoch_header(epoch).call()[2]
            read = read_all({i: r_consensus.epoch_member(epoch, i) for i in range(count)})
            return [tuple(read[i]) for i in range(count)]

        def _newer_key(self, epoch, address):
            """A key of `address` newer than its `epoch` set's: announced, or activated since."""
            epoch_key = self.set_keys[epoch][address]
            if address in self.announced:
                return self.announced[address][0]
            return self.keys[address] if self.keys[address] != epoch_key else None

        def _commit(self, fractions=(0.0, 0.0, 0.0), failure=None, old_keys=None):
            """Seal and submit the next height; bill each user a fraction of its headroom.

            `failure`: "short" (one signer short of a quorum), "newer_key" (a signer seals with
            a key newer than its set holds) or "old_key" (with the one `old_keys` held before
            the set was replaced); such a commit must revert and move nothing. Returns True when
            the commit landed, False when it failed as it had to, None when no signer had such
            a key (nothing submitted)."""
            read = read_all(
                {"epoch": r_consensus.current_epoch(), "last": r_consensus.last_height()}
            )
            epoch = read["epoch"]
            members = self._members(epoch)
            total = sum(power for power, _ in members)
            signers, power = [], 0
            for index, (member_power, _) in enumerate(members):
                if power >= total * 2 // 3 + 1:
                    break
                signers.append(index)
                power += member_power
            keys = dict(self.set_keys[epoch])
            if failure == "short":
                signers = signers[:-1]
            elif failure in ("newer_key", "old_key"):
                for i in signers:
                    address = members[i][1]
                    other = (
                        self._newer_key(epoch, address)
                        if failure == "newer_key"
                        else old_keys.get(address)
                    )
                    if other is not None and other != keys[address]:
                        keys[address] = other
                        break
                else:
                    return None
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
            height = read["last"] + 1
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
            signature = _seal(digest, [keys[members[i][1]] for i in signers])
            bitmap = sum(1 << i for i in signers)
            args = (
                height, commit.batch_root, commit.billing_root, commit.rewards_root, earned,
                [], billed, commit.parent_signers, bitmap, signature,
            )  # fmt: skip
            market_before = r_token.balanceOf(market.address).call()
            if failure is not None:
                reason = "quorum not met" if failure == "short" else "invalid signature"
                with ape.reverts(f"consensus: {reason}"):
                    consensus.commit(*args, sender=deployer)
                assert r_token.balanceOf(market.address).call() == market_before, (
                    "no escrow moves without quorum"
                )
                return False
            consensus.commit(*args, sender=deployer)
            assert r_token.balanceOf(market.address).call() == market_before - billed
            self.moved += billed
            self.earned = earned
            self.last_signers = bitmap
            for address, bill in bills.items():
                self.users[address].committed += bill
            if height % epoch_length == 0:
                # The commit that ends an epoch installs the next set from Staking's keys now,
                # or carries the set over when no validator is active.
                new = epoch + 1
                sets = read_all(
                    {
                        "epoch": r_consensus.current_epoch(),
                        new: r_consensus.validator_set(new),
                        epoch: r_consensus.validator_set(epoch),
                    }
                )
                assert sets["epoch"] == new
                if sets[new] == sets[epoch]:
                    self.set_keys[new] = self.set_keys[epoch]
                else:
                    self.set_keys[new] = {a: self.keys[a] for _, a in self._members(new)}
            return True

        @rule(
            fractions=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
            failure=st.sampled_from([None, None, "short", "newer_key"]),
        )
        def commit(self, fractions, failure):
            if self._commit(fractions, failure) is None:
                self._commit(fractions)  # no signer has a newer key: seal as usual

        @precondition(lambda self: self.epoch_due)
        @rule()
        def epoch_ends(self):
            """Validators commit empty batches to the end of the epoch; the next set takes over,
            sealing with the keys activated before it was installed, no longer the old ones."""
            epoch = consensus.current_epoch()
            old_keys = self.set_keys[epoch]
            while True:
                height = r_consensus.last_height().call() + 1
                assert self._commit()
                if height % epoch_length == 0:
                    break
            self.epoch_due = False
            assert self._commit(failure="old_key", old_keys=old_keys) in (False, None)
            assert self._commit()

        @precondition(lambda self: self.earned > 0)
        @rule()
        def claim(self):
            before, claimed = token.balanceOf(worker), gpu.claimed(worker)
            tree = rewards_tree({worker.address: self.earned})
            gpu.claim(worker, self.earned, tree.proofs[worker.address], sender=worker)
            assert token.balanceOf(worker) - before == self.earned - claimed
            assert gpu.claimed(worker) == self.earned, "claims reach what was committed"

        @rule(v=st.integers(0, 4))
        def double_sign_reported(self, v):
            validator = validators[v]
            height = consensus.last_height() + 1
            epoch = consensus.current_epoch()
            members = [a for _, a in self._members()]
            a = Commit(height, b"\x01" * 32, ZERO, ZERO, self.earned, (), 0)
            b = Commit(height, b"\x02" * 32, ZERO, ZERO, self.earned, (), 0)
            # The evidence is checked against the key of the height's set.
            secret = self.set_keys[epoch].get(validator.address)
            fields = []
            for commit in (a, b):
                digest = commit_digest(commit, chain.chain_id, consensus.address)
                fields.append(
                    (
                        (height, commit.batch_root, ZERO, ZERO, self.earned,
                         consensus.registry_hash([]), 0, 0),
                        _seal(digest, [secret] if secret else []),
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

        @rule(v=st.integers(0, 4))
        def unstake(self, v):
            validator = validators[v]
            staked = staking.staked(validator)
            if staked == 0:
                return
            staking.request_unstake(staked, sender=validator)
            assert staking.seat(validator) == 0
            self.epoch_due = True

        @rule(v=st.integers(0, 4))
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

        @rule(v=st.integers(0, 4))
        def come_back(self, v):
            validator = validators[v]
            if validator.address not in self.keys:
                return  # never registered: see `register_key`
            if staking.staked(validator) != 0 or token.balanceOf(validator) < STAKE:
                return
            staking.stake(ROLE_VALIDATOR, STAKE, sender=validator)
            if staking.seat(validator) == 0:  # slashed to nothing, it kept its seat
                staking.take_seat(sender=validator)
            self.epoch_due = True

        # --- keys ---

        @rule(forged=st.booleans())
        def register_key(self, forged):
            """The fifth validator stakes and registers its key with a proof of possession."""
            if joiner.address in self.keys:
                if staking.is_active(joiner, ROLE_VALIDATOR):
                    with ape.reverts("staking: key already registered"):
                        staking.register_validator(_key(deployed.joiner_secret), b"", sender=joiner)
                return
            if staking.staked(joiner) == 0:
                if token.balanceOf(joiner) < STAKE:
                    return
                staking.stake(ROLE_VALIDATOR, STAKE, sender=joiner)
            if not staking.is_active(joiner, ROLE_VALIDATOR):
                return
            secret = deployed.joiner_secret
            if forged:
                # A proof bound to another address: a key squatted from someone else.
                with ape.reverts("staking: invalid proof of possession"):
                    staking.register_validator(
                        _key(secret), _possession(secret, deployer.address), sender=joiner
                    )
                return
            staking.register_validator(
                _key(secret), _possession(secret, joiner.address), sender=joiner
            )
            self.keys[joiner.address] = secret
            self.epoch_due = True

        @rule(v=st.integers(0, 4), how=st.sampled_from(["own", "other_address", "taken"]))
        def rotate_key(self, v, how):
            """A validator announces a new key, proven for its own address; it cannot announce
            a key proven for another address, nor a key someone holds."""
            validator = validators[v]
            self.rotations += 1
            secret = _rotation_secret(self.rotations)
            if validator.address not in self.keys:
                with ape.reverts("staking: no key registered"):
                    staking.rotate_key(_key(secret), b"", sender=validator)
                return
            if how == "taken":
                other = validators[(v + 1) % 4]
                with ape.reverts("staking: key in use"):
                    staking.rotate_key(_key(self.keys[other.address]), b"", sender=validator)
                return
            bound_to = validator.address if how == "own" else deployer.address
            proof = _possession(secret, bound_to)
            if how == "other_address":
                with ape.reverts("staking: invalid proof of possession"):
                    staking.rotate_key(_key(secret), proof, sender=validator)
                return
            receipt = staking.rotate_key(_key(secret), proof, sender=validator)
            active_at = chain.blocks[receipt.block_number].timestamp + KEY_ROTATION_DELAY
            assert staking.key_active_at(validator) == active_at
            self.announced[validator.address] = (secret, active_at)

        @precondition(lambda self: self.announced)
        @rule(pick=st.integers(0, 2**16), wait=st.booleans())
        def activate_key(self, pick, wait):
            """An announced key becomes the validator's key once the delay is over, not before."""
            address = self._pick(self.announced, pick)
            secret, active_at = self.announced[address]
            if wait and chain.pending_timestamp < active_at:
                chain.pending_timestamp = active_at
            if chain.pending_timestamp < active_at:
                with ape.reverts("staking: key rotation delay not over"):
                    staking.activate_key(sender=account_of[address])
                return
            staking.activate_key(sender=account_of[address])
            self.keys[address] = secret
            del self.announced[address]
            self.epoch_due = True

        # --- governance and time ---

        @rule(
            change=st.one_of(
                st.tuples(st.just("set_withdraw_delay"), st.integers(1, 600)),
                st.tuples(st.just("set_fee"), st.integers(0, 1_000)),
                st.tuples(st.just("set_treasury"), st.sampled_from([0, 1])),
            )
        )
        def govern_through_timelock(self, change):
            """The owner (the timelock) changes a market parameter; the deployer alone cannot."""
            setter, value = change
            if setter == "set_treasury":
                value = (deployer, treasury)[value].address
            method = getattr(market, setter)
            with ape.reverts("ownable: caller is not the owner"):
                method(value, sender=deployer)
            payload = method.as_transaction(value, sender=deployer).data
            salt = chain.pending_timestamp.to_bytes(32, "big")
            minimum = timelock.get_minimum_delay()
            timelock.schedule(market, 0, payload, ZERO, salt, minimum, sender=deployer)
            chain.pending_timestamp += minimum
            timelock.execute(market, 0, payload, ZERO, salt, sender=deployer)
            if setter == "set_withdraw_delay":
                assert market.withdraw_delay() == value
            elif setter == "set_fee":
                assert market.fee_bps() == value
                self.fee_bps = value
            else:
                assert market.treasury() == value
                self.treasury = value

        @rule(seconds=st.integers(1, 400))
        def time_passes(self, seconds):
            chain.pending_timestamp += seconds

        # --- invariants ---

        @invariant()
        def books_balance(self):
            if not hasattr(self, "users"):
                return
            calls = {("balance", h): r_token.balanceOf(h) for h in holders}
            calls.update(
                supply=r_token.totalSupply(),
                staked=r_staking.total_staked(),
                pending=r_staking.total_pending(),
                claimed=r_gpu.total_claimed(),
                rewards=r_gpu.rewards_total(),
                worker_claimed=r_gpu.claimed(worker.address),
                sockets=r_sockets.totalSupply(),
            )
            for user in users:
                calls["settled", user.address] = r_market.spent_settled(user.address)
                calls["escrow", user.address] = r_market.escrow(user.address)
            for holder in holders_of_sockets:
                calls["sockets", holder.address] = r_sockets.balanceOf(holder.address)
            for token_id in self.holder:
                calls["owner", token_id] = r_sockets.ownerOf(token_id)
                calls["listing", token_id] = r_market.listings(token_id)
            for validator in validators:
                calls["key", validator.address] = r_staking.bls_public_key(validator.address)
            read = read_all(calls)

            balance = {h: read["balance", h] for h in holders}
            assert sum(balance.values()) == read["supply"], (
                "every EMC is in a wallet, stake, escrow or a contract"
            )
            for address, expected in self.wallets.items():
                assert balance[address] == expected, (
                    "wallets move only by deposits, withdrawals, socket sales and fees"
                )
            assert balance[staking.address] == read["staked"] + read["pending"]
            deposits = sum(m.deposited - m.withdrawn for m in self.users.values())
            assert balance[market.address] == deposits - self.moved, (
                "escrow moved only by quorum-signed commits"
            )
            assert read["claimed"] <= read["rewards"] == self.earned
            assert read["worker_claimed"] <= self.earned, "nobody claims more than was committed"
            for user in users:
                m = self.users[user.address]
                unapplied = m.committed - read["settled", user.address] if m.deposited else 0
                assert read["escrow", user.address] - unapplied == (
                    m.deposited - m.withdrawn - m.committed
                ), "a user's escrow pays only its own bills"

            held = sum(read["sockets", h.address] for h in holders_of_sockets)
            assert held == read["sockets"] == len(self.holder), (
                "every socket has exactly one holder"
            )
            for token_id, holder in self.holder.items():
                assert read["owner", token_id] == holder
                listing = self.listings.get(token_id, (ZERO_ADDRESS, 0, 0))
                assert tuple(read["listing", token_id]) == listing
            for validator in validators:
                secret = self.keys.get(validator.address)
                assert read["key", validator.address] == (_key(secret) if secret else b""), (
                    "a key takes effect when registered or activated, never when announced"
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
