# pragma version ~=0.4.3
"""
@title Compute Market: Socket Listings, User Escrow and Lazy Billing
@custom:contract-name ComputeMarket
@license GNU Affero General Public License v3.0 only
@notice Holders list compute sockets at a fixed EMC price; a buyer pays the
        seller, less a protocol fee to the treasury, and receives the
        socket. Listings are non-custodial: the socket stays with its
        holder, who approves this market, so a listing whose socket moved
        away is stale and cannot be bought.

        Users escrow EMC here to pay for invocations. Billing is lazy: each
        quorum-signed consensus commit calls `settle` with a billing root of
        (user, cumulative spent) and the batch's billed total, and only that
        total moves, from escrow to the reward contract. A user's own
        escrow is brought up to date when its cumulative spent is proven
        against the latest root (`prove_spent`, or inside `withdraw`).
        Leaving takes two steps: `request_withdraw`, then `withdraw` once
        the delay has passed and at least one commit has settled since the
        request, so the commit that was in flight when the user asked (the
        only one that may bill beyond the escrow less the request) has
        landed and its bill is applied before the money leaves.
"""


from ethereum.ercs import IERC20
from ethereum.ercs import IERC721

from .interfaces import IComputeMarket
implements: IComputeMarket


from snekmate.auth import ownable as ow
initializes: ow

from .modules import merkle


# @dev Governance (the owner) sets the fee, the treasury and the delay, and
# wires consensus and the reward contract once; giving up ownership is left
# out on purpose, since parameters must stay settable.
exports: (ow.owner, ow.transfer_ownership)


# @dev Fees are in basis points, and capped.
BPS: constant(uint256) = 10_000
MAX_FEE_BPS: public(constant(uint256)) = 1_000


# @dev The payment token (EMC, with EIP-2612 permit).
token: public(immutable(IERC20))


# @dev The ComputeSocket collection traded here.
sockets: public(immutable(IERC721))


# @dev Where protocol fees go.
treasury: public(address)


# @dev The protocol fee on each sale, in basis points of the price.
fee_bps: public(uint256)


# @dev Seconds between `request_withdraw` and the earliest `withdraw`:
# longer than a settlement round.
withdraw_delay: public(uint256)


# @dev The only caller of `settle`: the ComputeConsensus contract.
consensus: public(address)


# @dev Where billed totals go: the GPUComputeReward contract.
reward_contract: public(address)


# @dev A fixed-price listing of one socket, bound to the socket's transfer
# count when listed: once the socket changes hands the listing is dead,
# even if it comes back to the seller.
struct Listing:
    seller: address
    price: uint256
    transfer_count: uint256


# @dev ComputeSocket's count of each socket's transfers.
interface ISocketTransfers:
    def transfer_count(token_id: uint256) -> uint256: view


# @dev The listing of each socket, by token id (an empty seller: none).
listings: public(HashMap[uint256, Listing])


# @dev Each user's escrow, less the spending applied to it so far.
escrow: public(HashMap[address, uint256])


# @dev Each user's cumulative spent as last proven (and applied).
spent_settled: public(HashMap[address, uint256])


# @dev Each user's requested withdrawal, and when it unlocks.
withdrawal_requested: public(HashMap[address, uint256])
withdrawable_at: public(HashMap[address, uint256])


# @dev The commit count when each user's withdrawal was requested: the
# withdrawal waits for a later commit.
requested_at_commit: public(HashMap[address, uint256])


# @dev Bounds on the withdraw delay: above zero, so a request and its
# withdrawal never share a block, and at most a week, so escrow cannot be
# frozen by governance.
MIN_WITHDRAW_DELAY: public(constant(uint256)) = 1
MAX_WITHDRAW_DELAY: public(constant(uint256)) = 7 * 86_400


# @dev Billed totals that a commit sealed but the unbilled escrow could not
# cover: settled as far as the escrow went, the rest recorded here.
billing_shortfall: public(uint256)


# @dev The number of the first commit whose billing root must hold a leaf
# for the user: the commit after its first deposit (0: never deposited).
billable_from: public(HashMap[address, uint256])


# @dev What over-billing (a proven spent beyond the user's escrow) left
# unpaid per user: capped away, see `_apply_spent`.
overbilled: public(HashMap[address, uint256])


# @dev The latest billing root.
billing_root: public(bytes32)


# @dev How many commits have settled (low 64 bits) and every billed total
# ever settled (high 192 bits): one slot, since every settle writes both.
settled_counts: uint256


# @dev Sums, one slot since settle reads both: the escrow of all users (low
# 128 bits) and billed totals that left but are not yet applied to any
# user's escrow (high 128 bits). This contract holds exactly
# `total_escrow - outstanding_billed` EMC.
escrow_sums: uint256


# @dev Packed fields: 64-bit counts, 128-bit sums of EMC (a sum of escrow
# never exceeds the token's supply, checked on deposit).
COUNT_MASK: constant(uint256) = 2**64 - 1
SUM_MASK: constant(uint256) = 2**128 - 1


event Listed:
    token_id: uint256
    seller: indexed(address)
    price: uint256


event ListingCancelled:
    token_id: uint256
    seller: indexed(address)


event Sold:
    token_id: uint256
    seller: indexed(address)
    buyer: indexed(address)
    price: uint256
    fee: uint256


event Deposited:
    user: indexed(address)
    amount: uint256
    escrow: uint256


event WithdrawRequested:
    user: indexed(address)
    amount: uint256
    withdrawable_at: uint256


event Withdrawn:
    user: indexed(address)
    amount: uint256
    requested: uint256
    escrow: uint256


event SpentProven:
    user: indexed(address)
    cumulative_spent: uint256
    applied: uint256
    overbilled: uint256
    escrow: uint256


event Settled:
    commit: uint256
    billing_root: bytes32
    billed_total: uint256
    reward_contract: indexed(address)


event SettlementShortfall:
    commit: uint256
    billed_total: uint256
    moved: uint256


event ConsensusSet:
    consensus: indexed(address)


event RewardContractSet:
    reward_contract: indexed(address)


event FeeChanged:
    fee_bps: uint256


event TreasuryChanged:
    treasury: indexed(address)


event WithdrawDelayChanged:
    seconds: uint256


@deploy
def __init__(token_: IERC20, sockets_: IERC721, treasury_: address, fee_bps_: uint256, withdraw_delay_: uint256):
    """
    @dev The deployer becomes the owner (governance).
    @param token_ The EMC token.
    @param sockets_ The ComputeSocket collection.
    @param treasury_ Where protocol fees go.
    @param fee_bps_ The protocol fee, in basis points.
    @param withdraw_delay_ Seconds from a withdrawal request to its unlock.
    """
    assert fee_bps_ <= MAX_FEE_BPS, "market: fee too high"
    assert treasury_ != empty(address), "market: zero address"
    assert withdraw_delay_ >= MIN_WITHDRAW_DELAY and withdraw_delay_ <= MAX_WITHDRAW_DELAY, "market: delay out of bounds"
    ow.__init__()
    token = token_
    sockets = sockets_
    self.treasury = treasury_
    self.fee_bps = fee_bps_
    self.withdraw_delay = withdraw_delay_


# ============================================================================
# Listings
# ============================================================================


@external
def list_socket(token_id: uint256, price: uint256):
    """
    @notice Lists a socket the caller holds at a fixed `price` in EMC wei,
            replacing any earlier listing of it.
    @dev The socket stays with the holder, who must have approved this
         market for it (`approve` or `setApprovalForAll`).
    @param token_id The socket.
    @param price The price, in EMC wei.
    """
    assert price != 0, "market: zero price"
    assert staticcall sockets.ownerOf(token_id) == msg.sender, "market: not the holder"
    assert self._market_approved(msg.sender, token_id), "market: not approved"
    self.listings[token_id] = Listing(
        seller=msg.sender, price=price, transfer_count=staticcall ISocketTransfers(sockets.address).transfer_count(token_id)
    )
    log Listed(token_id=token_id, seller=msg.sender, price=price)


@external
def cancel_listing(token_id: uint256):
    """
    @notice Cancels a listing. The seller may, and so may the socket's
            current holder (which clears a stale listing).
    @param token_id The socket.
    """
    seller: address = self.listings[token_id].seller
    assert seller != empty(address), "market: not listed"
    assert msg.sender == seller or msg.sender == staticcall sockets.ownerOf(token_id), "market: not the seller"
    self.listings[token_id] = empty(Listing)
    log ListingCancelled(token_id=token_id, seller=seller)


@external
@nonreentrant
def buy(token_id: uint256, max_price: uint256):
    """
    @notice Buys a listed socket: the caller pays the price from its wallet
            (it must have approved this market for it), the seller gets the
            price less the protocol fee, the treasury the fee.
    @dev `max_price` protects the buyer from a price raised by relisting
         just before its transaction.
    @param token_id The socket.
    @param max_price The most the buyer will pay.
    """
    listing: Listing = self.listings[token_id]
    assert listing.seller != empty(address), "market: not listed"
    assert listing.seller != msg.sender, "market: own listing"
    assert listing.price <= max_price, "market: price above maximum"
    assert staticcall sockets.ownerOf(token_id) == listing.seller, "market: stale listing"
    assert staticcall ISocketTransfers(sockets.address).transfer_count(token_id) == listing.transfer_count, "market: stale listing"
    assert self._market_approved(listing.seller, token_id), "market: stale listing"

    # The fee rounds down, in the seller's favour; fee <= price, so the
    # subtraction cannot underflow.
    fee: uint256 = listing.price * self.fee_bps // BPS
    self.listings[token_id] = empty(Listing)
    if fee != 0:
        assert extcall token.transferFrom(msg.sender, self.treasury, fee, default_return_value=True), "market: transfer failed"
    assert extcall token.transferFrom(msg.sender, listing.seller, listing.price - fee, default_return_value=True), "market: transfer failed"
    extcall sockets.transferFrom(listing.seller, msg.sender, token_id)
    log Sold(token_id=token_id, seller=listing.seller, buyer=msg.sender, price=listing.price, fee=fee)


# ============================================================================
# Escrow
# ============================================================================


@external
def deposit(amount: uint256):
    """
    @notice Adds `amount` EMC to the caller's escrow; the caller must have
            approved it.
    @param amount The EMC to escrow.
    """
    self._deposit(msg.sender, amount)


@external
def deposit_with_permit(amount: uint256, deadline: uint256, v: uint8, r: bytes32, s: bytes32):
    """
    @notice Approves by an EIP-2612 permit signature and deposits, in one
            transaction.
    @dev A failed permit is ignored: if someone submitted the same permit
         first (to grief the deposit), the allowance is already there and
         the deposit goes through; without allowance `transferFrom` reverts.
    @param amount The EMC to escrow; the permit's value.
    @param deadline The permit's deadline.
    @param v The signature's recovery id.
    @param r The signature's r.
    @param s The signature's s.
    """
    success: bool = raw_call(
        token.address,
        abi_encode(
            msg.sender,
            self,
            amount,
            deadline,
            v,
            r,
            s,
            method_id=method_id("permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"),
        ),
        revert_on_failure=False,
    )
    self._deposit(msg.sender, amount)


@external
def request_withdraw(amount: uint256):
    """
    @notice Asks to withdraw `amount` of the caller's escrow after the
            withdraw delay. A new request replaces the previous one and
            restarts the clock. From the request on, validators bill the
            caller only within its escrow less the request.
    @param amount The EMC to withdraw.
    """
    assert amount != 0, "market: zero amount"
    assert amount <= self.escrow[msg.sender], "market: exceeds escrow"
    unlock: uint256 = block.timestamp + self.withdraw_delay
    self.withdrawal_requested[msg.sender] = amount
    self.withdrawable_at[msg.sender] = unlock
    self.requested_at_commit[msg.sender] = self.settled_counts & COUNT_MASK
    log WithdrawRequested(user=msg.sender, amount=amount, withdrawable_at=unlock)


@external
@nonreentrant
def withdraw(cumulative_spent: uint256, proof: DynArray[bytes32, merkle.MAX_PROOF_DEPTH]) -> uint256:
    """
    @notice Pays out the caller's requested withdrawal once the delay has
            passed, after applying its cumulative spent, proven against the
            latest billing root. It pays the request, or all that is free
            when billing left less (the rest of the escrow is never held
            back: a user can always leave with what was not billed).
    @dev A user that no commit since its first deposit had to include needs
         no proof: pass its `spent_settled` and an empty proof.
    @param cumulative_spent The caller's cumulative spent in the latest root.
    @param proof The caller's Merkle proof in the latest billing root.
    @return uint256 The EMC paid out.
    """
    requested: uint256 = self.withdrawal_requested[msg.sender]
    assert requested != 0, "market: no withdrawal requested"
    assert block.timestamp >= self.withdrawable_at[msg.sender], "market: withdraw delay not over"
    # The commit in flight at the request may bill this user's whole escrow:
    # it must land first (no commit can come before consensus is wired).
    if self.consensus != empty(address):
        assert self.settled_counts & COUNT_MASK > self.requested_at_commit[msg.sender], "market: awaiting a commit"
    if self._proof_required(msg.sender):
        self._apply_spent(msg.sender, cumulative_spent, proof)
    else:
        assert cumulative_spent == self.spent_settled[msg.sender] and len(proof) == 0, "market: invalid billing proof"

    escrow: uint256 = self.escrow[msg.sender]
    amount: uint256 = min(requested, escrow)
    self.withdrawal_requested[msg.sender] = 0
    self.escrow[msg.sender] = escrow - amount
    self._add_escrow_sums(0, amount, 0, 0)
    if amount != 0:
        assert extcall token.transfer(msg.sender, amount, default_return_value=True), "market: transfer failed"
    log Withdrawn(user=msg.sender, amount=amount, requested=requested, escrow=escrow - amount)
    return amount


@external
def prove_spent(user: address, cumulative_spent: uint256, proof: DynArray[bytes32, merkle.MAX_PROOF_DEPTH]) -> uint256:
    """
    @notice Applies `user`'s cumulative spent, proven against the latest
            billing root, to its escrow. Anyone may call it: routers do, to
            keep the escrow they read on-chain current.
    @param user The user.
    @param cumulative_spent The user's cumulative spent in the latest root.
    @param proof The Merkle proof of (user, cumulative_spent).
    @return uint256 The EMC taken from the user's escrow.
    """
    return self._apply_spent(user, cumulative_spent, proof)


# ============================================================================
# Settlement (the consensus hook)
# ============================================================================


@external
def settle(batch_billed_total: uint256, billing_root: bytes32) -> uint256:
    """
    @notice Settles one committed batch: records its billing root and moves
            the batch's billed total from escrow to the reward contract.
    @dev Only ComputeConsensus, after checking the quorum's aggregate
         signature over the root. It never reverts for economic reasons, so
         a sealed commit always executes: a total beyond the escrow not yet
         billed moves only that escrow, and the rest is recorded in
         `billing_shortfall` (no commit moves more than users hold).
         Per-user limits are the validators' rule (a batch bills a user only
         within its escrow less its withdrawal request); a root that breaks
         it is capped per user when proven (see `_apply_spent`).
    @param batch_billed_total The EMC this batch bills, over all users.
    @param billing_root The root of (user, cumulative spent) after the batch.
    @return uint256 The EMC moved to the reward contract.
    """
    assert msg.sender == self.consensus, "market: caller is not consensus"
    reward_contract: address = self.reward_contract
    assert reward_contract != empty(address), "market: reward contract not set"
    sums: uint256 = self.escrow_sums
    moved: uint256 = min(batch_billed_total, self._unbilled(sums))

    counts: uint256 = self.settled_counts
    commit: uint256 = (counts & COUNT_MASK) + 1
    assert commit <= COUNT_MASK, "market: commit count overflow"
    # Safe: moved is at most the escrow held, below 2**128 (see `_deposit`),
    # and 2**192 such totals are out of reach.
    self.settled_counts = ((counts >> 64) + moved) << 64 | commit
    self.billing_root = billing_root
    self.escrow_sums = sums + (moved << 128)
    if moved != batch_billed_total:
        self.billing_shortfall += batch_billed_total - moved
        log SettlementShortfall(commit=commit, billed_total=batch_billed_total, moved=moved)
    if moved != 0:
        assert extcall token.transfer(reward_contract, moved, default_return_value=True), "market: transfer failed"
    log Settled(commit=commit, billing_root=billing_root, billed_total=moved, reward_contract=reward_contract)
    return moved


# ============================================================================
# Views
# ============================================================================


@external
@view
def commit_count() -> uint256:
    """
    @notice How many commits have settled.
    @return uint256 The count.
    """
    return self.settled_counts & COUNT_MASK


@external
@view
def total_billed() -> uint256:
    """
    @notice Every billed total ever settled (moved out of escrow).
    @return uint256 The EMC.
    """
    return self.settled_counts >> 64


@external
@view
def total_escrow() -> uint256:
    """
    @notice The escrow of all users.
    @return uint256 The EMC.
    """
    return self.escrow_sums & SUM_MASK


@external
@view
def outstanding_billed() -> uint256:
    """
    @notice Billed totals that left but are not yet applied to any user's
            escrow.
    @return uint256 The EMC.
    """
    return self.escrow_sums >> 128


@external
@view
def unbilled_escrow() -> uint256:
    """
    @notice The EMC this contract holds: escrow not yet billed away.
    @return uint256 Total escrow less billed totals not yet applied to users.
    """
    return self._unbilled_escrow()


@external
@view
def proof_required(user: address) -> bool:
    """
    @notice Whether `user` must prove its cumulative spent to withdraw: a
            commit has happened whose billing root must hold it.
    @param user The user.
    @return bool True when a proof is needed.
    """
    return self._proof_required(user)


@external
@view
def billing_leaf(user: address, cumulative_spent: uint256) -> bytes32:
    """
    @notice The billing tree leaf of (`user`, `cumulative_spent`).
    @param user The user.
    @param cumulative_spent Its cumulative spent.
    @return bytes32 keccak256(keccak256(abi_encode(LEAF_TYPE_BILLING, user, cumulative_spent))).
    """
    return self._billing_leaf(user, cumulative_spent)


@external
@view
def fee_for(price: uint256) -> uint256:
    """
    @notice The protocol fee on a sale at `price`.
    @param price The sale price.
    @return uint256 The fee, rounded down.
    """
    return price * self.fee_bps // BPS


# ============================================================================
# Governance
# ============================================================================


@external
def set_consensus(consensus: address):
    """
    @notice Wires the one caller of `settle` (ComputeConsensus), once.
    @param consensus The consensus contract.
    """
    ow._check_owner()
    assert self.consensus == empty(address), "market: consensus already set"
    assert consensus != empty(address), "market: zero address"
    self.consensus = consensus
    log ConsensusSet(consensus=consensus)


@external
def set_reward_contract(reward_contract: address):
    """
    @notice Wires where billed totals go (GPUComputeReward), once.
    @param reward_contract The reward contract.
    """
    ow._check_owner()
    assert self.reward_contract == empty(address), "market: reward contract already set"
    assert reward_contract != empty(address), "market: zero address"
    self.reward_contract = reward_contract
    log RewardContractSet(reward_contract=reward_contract)


@external
def set_fee(fee_bps: uint256):
    """
    @notice Changes the protocol fee for sales from now on.
    @param fee_bps The new fee, in basis points (at most MAX_FEE_BPS).
    """
    ow._check_owner()
    assert fee_bps <= MAX_FEE_BPS, "market: fee too high"
    self.fee_bps = fee_bps
    log FeeChanged(fee_bps=fee_bps)


@external
def set_treasury(treasury: address):
    """
    @notice Changes where protocol fees go.
    @param treasury The new treasury.
    """
    ow._check_owner()
    assert treasury != empty(address), "market: zero address"
    self.treasury = treasury
    log TreasuryChanged(treasury=treasury)


@external
def set_withdraw_delay(seconds: uint256):
    """
    @notice Changes the withdraw delay for requests made from now on,
            within [MIN_WITHDRAW_DELAY, MAX_WITHDRAW_DELAY]. Lowering it
            cannot let billed escrow leave: a withdrawal also waits for a
            commit after its request.
    @param seconds The new delay.
    """
    ow._check_owner()
    assert seconds >= MIN_WITHDRAW_DELAY and seconds <= MAX_WITHDRAW_DELAY, "market: delay out of bounds"
    self.withdraw_delay = seconds
    log WithdrawDelayChanged(seconds=seconds)


# ============================================================================
# Internal
# ============================================================================


@internal
def _deposit(user: address, amount: uint256):
    """
    @dev Credits `amount` to `user`'s escrow and pulls it from `user`.
    @param user The depositor.
    @param amount The EMC.
    """
    assert amount != 0, "market: zero amount"
    if self.billable_from[user] == 0:
        # The next commit's billing root must hold the new depositor.
        self.billable_from[user] = (self.settled_counts & COUNT_MASK) + 1
    escrow: uint256 = self.escrow[user] + amount
    self.escrow[user] = escrow
    self._add_escrow_sums(amount, 0, 0, 0)
    assert extcall token.transferFrom(user, self, amount, default_return_value=True), "market: transfer failed"
    log Deposited(user=user, amount=amount, escrow=escrow)


@internal
def _apply_spent(user: address, cumulative_spent: uint256, proof: DynArray[bytes32, merkle.MAX_PROOF_DEPTH]) -> uint256:
    """
    @dev Verifies (user, cumulative_spent) against the latest billing root
         and takes the spending not yet applied from the user's escrow.
         Capped: a root that bills a user beyond its escrow takes the whole
         escrow and no more; the excess is recorded in `overbilled` (only
         a quorum breaking the validators' rule can cause it).
    @param user The user.
    @param cumulative_spent Its cumulative spent in the latest root.
    @param proof The Merkle proof.
    @return uint256 The EMC taken from the escrow.
    """
    root: bytes32 = self.billing_root
    assert root != empty(bytes32), "market: no billing root"
    assert merkle._verify(root, self._billing_leaf(user, cumulative_spent), proof), "market: invalid billing proof"
    settled: uint256 = self.spent_settled[user]
    assert cumulative_spent >= settled, "market: spent below settled"

    # delta >= 0 by the assert above; applied <= escrow and applied <=
    # outstanding_billed (a consistent root never bills more than settled
    # totals), so neither subtraction below underflows.
    delta: uint256 = cumulative_spent - settled
    escrow: uint256 = self.escrow[user]
    applied: uint256 = min(delta, escrow)
    excess: uint256 = delta - applied
    self.spent_settled[user] = cumulative_spent
    self.escrow[user] = escrow - applied
    outstanding: uint256 = self.escrow_sums >> 128
    self._add_escrow_sums(0, applied, 0, min(applied, outstanding))
    if excess != 0:
        self.overbilled[user] += excess
    log SpentProven(user=user, cumulative_spent=cumulative_spent, applied=applied, overbilled=excess, escrow=escrow - applied)
    return applied


@internal
@view
def _unbilled_escrow() -> uint256:
    """
    @dev Total escrow less billed totals that left and are not yet applied.
    @return uint256 The EMC held.
    """
    return self._unbilled(self.escrow_sums)


@internal
@pure
def _unbilled(sums: uint256) -> uint256:
    """
    @dev `_unbilled_escrow` of the packed sums.
    @param sums total_escrow (low 128 bits) || outstanding_billed (high).
    @return uint256 The EMC held.
    """
    total: uint256 = sums & SUM_MASK
    # Only an over-billing root (see `_apply_spent`) leaves more outstanding
    # than escrow; then nothing is left to bill.
    return total - min(sums >> 128, total)


@internal
def _add_escrow_sums(escrow_in: uint256, escrow_out: uint256, billed_in: uint256, billed_out: uint256):
    """
    @dev Moves the packed sums: total_escrow += escrow_in - escrow_out,
         outstanding_billed += billed_in - billed_out (checked arithmetic).
    @param escrow_in Escrow added.
    @param escrow_out Escrow removed.
    @param billed_in Billed totals that left.
    @param billed_out Billed totals applied to users.
    """
    sums: uint256 = self.escrow_sums
    total: uint256 = (sums & SUM_MASK) + escrow_in - escrow_out
    outstanding: uint256 = (sums >> 128) + billed_in - billed_out
    assert total <= SUM_MASK and outstanding <= SUM_MASK, "market: escrow too large"
    self.escrow_sums = (outstanding << 128) | total


@internal
@view
def _proof_required(user: address) -> bool:
    """
    @dev See `proof_required`.
    @param user The user.
    @return bool True when a proof is needed.
    """
    billable_from: uint256 = self.billable_from[user]
    return billable_from != 0 and self.settled_counts & COUNT_MASK >= billable_from


@internal
@pure
def _billing_leaf(user: address, cumulative_spent: uint256) -> bytes32:
    """
    @dev The billing leaf, the same as `offchain/protocol/billing.py`.
    @param user The user.
    @param cumulative_spent Its cumulative spent.
    @return bytes32 The leaf hash.
    """
    return merkle._leaf(keccak256(abi_encode(merkle.LEAF_TYPE_BILLING, user, cumulative_spent)))


@internal
@view
def _market_approved(holder: address, token_id: uint256) -> bool:
    """
    @dev Whether this market may move `holder`'s socket `token_id`.
    @param holder The socket's holder.
    @param token_id The socket.
    @return bool True when approved for the token or as an operator.
    """
    return staticcall sockets.getApproved(token_id) == self or staticcall sockets.isApprovedForAll(holder, self)
