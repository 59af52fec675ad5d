# pragma version ~=0.4.3
"""
@title Consensus Reward: a Reward per Commit, Split among its Signers by Stake
@custom:contract-name ConsensusReward
@license GNU Affero General Public License v3.0 only
@notice Every quorum-signed height earns its signers `reward_per_commit`
        EMC, split by voting power. A commit costs this contract nothing:
        ComputeConsensus keeps each height's sealed signers (bitmap and
        power, one slot) and this contract reads them when a signer claims.
        Rewards are booked lazily, in one step for every height sealed since
        the last booking (`book`, which every claim runs first), and each
        signer claims its share by proving its index in that height's
        validator set (the data contract ComputeConsensus keeps per epoch).

        Funding is any EMC transferred here. A booking covers as many of
        the sealed heights as the balance not yet owed pays for in full, in
        height order; the rest wait for funding, so every booked reward
        stays payable and no height is ever booked at less than the rate. A
        rate change books first and applies to every height not booked yet.
        Integer division leaves at most one wei per signer of a height
        unclaimed (dust that stays owed).
"""


from ethereum.ercs import IERC20

from .interfaces import IComputeConsensus


from snekmate.auth import ownable as ow
initializes: ow

from .modules import validator_set


# @dev Governance (the owner) sets the reward and wires consensus once;
# giving up ownership is left out on purpose, since the reward must stay
# settable.
exports: (ow.owner, ow.transfer_ownership)


# @dev The most heights one claim covers.
MAX_CLAIM_HEIGHTS: public(constant(uint256)) = 64


# @dev Packed fields are 128 bits wide.
LOW_MASK: constant(uint256) = 2**128 - 1


# @dev The reward token (EMC).
token: public(immutable(IERC20))


# @dev The source of sealed signer sets and validator sets: the
# ComputeConsensus contract.
consensus: public(address)


# @dev The most a height may earn its signers.
MAX_REWARD_PER_COMMIT: public(constant(uint256)) = 1_000 * 10**18


# @dev The most rate changes ever (each is a timelocked governance call).
MAX_RATE_CHANGES: public(constant(uint256)) = 1_024


# @dev Rate change k: the first height it applies to (high 128 bits) and the
# EMC each height from there earns (low 128 bits). Change 0 starts at 1.
rate_changes: HashMap[uint256, uint256]
rate_change_count: public(uint256)


# @dev Heights 1 .. booked_through are booked: their rewards are reserved.
booked_through: public(uint256)


# @dev Booked but not yet claimed: the balance always covers it.
owed: public(uint256)


# @dev Every reward ever paid; what was ever booked is `owed + total_claimed`.
total_claimed: public(uint256)


# @dev Per account, per word (height // 256): bit height % 256 is set once
# the account claimed that height.
claimed_heights: HashMap[address, HashMap[uint256, uint256]]


event ConsensusSet:
    consensus: indexed(address)


event RewardsBooked:
    booked_through: uint256
    reward_per_commit: uint256
    owed: uint256


event RewardClaimed:
    account: indexed(address)
    amount: uint256
    heights: DynArray[uint256, MAX_CLAIM_HEIGHTS]


event RewardPerCommitChanged:
    amount: uint256
    from_height: uint256


@deploy
def __init__(token_: IERC20, reward_per_commit_: uint256):
    """
    @notice Deploys the reward contract; the deployer becomes the owner.
    @param token_ The reward token (EMC).
    @param reward_per_commit_ The EMC each height earns its signers.
    """
    assert reward_per_commit_ <= MAX_REWARD_PER_COMMIT, "reward: reward too large"
    ow.__init__()
    token = token_
    self.rate_changes[0] = (1 << 128) | reward_per_commit_
    self.rate_change_count = 1


# ============================================================================
# Booking
# ============================================================================


@external
def book() -> uint256:
    """
    @notice Books every sealed height that the balance pays for in full.
    @dev Anyone; every claim does it first.
    @return uint256 The last booked height.
    """
    return self._book()


@external
@view
def bookable_through() -> uint256:
    """
    @notice The last height a booking now would reach.
    @return uint256 The height.
    """
    through: uint256 = 0
    cost: uint256 = 0
    through, cost = self._bookable()
    return through


# ============================================================================
# Claims
# ============================================================================


@external
def claim(
    heights: DynArray[uint256, MAX_CLAIM_HEIGHTS], indices: DynArray[uint256, MAX_CLAIM_HEIGHTS]
) -> uint256:
    """
    @notice Pays the caller its share of each height in `heights` it signed.
    @dev Books first. Per height the caller names its index in that
         height's validator set; the set's data contract must hold the
         caller at that index, and the height's sealed bitmap must have that
         bit. Each (height, account) pays once; a repeat reverts.
    @param heights Booked heights.
    @param indices The caller's index in each height's validator set.
    @return uint256 The EMC paid.
    """
    assert len(heights) == len(indices), "reward: length mismatch"
    assert len(heights) != 0, "reward: nothing to claim"
    source: address = self.consensus
    assert source != empty(address), "reward: consensus not set"
    booked: uint256 = self._book()

    amount: uint256 = 0
    cached_epoch: uint256 = max_value(uint256)
    data: address = empty(address)
    for i: uint256 in range(len(heights), bound=MAX_CLAIM_HEIGHTS):
        height: uint256 = heights[i]
        index: uint256 = indices[i]
        assert height != 0 and height <= booked, "reward: height not booked"
        bitmap: uint256 = 0
        signer_power: uint256 = 0
        epoch: uint256 = 0
        bitmap, signer_power, epoch = staticcall IComputeConsensus(source).signer_record(height)
        assert index < 128 and (bitmap >> index) & 1 == 1, "reward: not a signer"

        if epoch != cached_epoch:
            data = staticcall IComputeConsensus(source).validator_set(epoch)
            assert data != empty(address), "reward: unknown validator set"
            cached_epoch = epoch
        power: uint256 = 0
        member: address = empty(address)
        power, member = validator_set._member_power(data, index)
        assert member == msg.sender, "reward: index is not the caller"

        word: uint256 = height >> 8
        bit: uint256 = 1 << (height & 255)
        bits: uint256 = self.claimed_heights[msg.sender][word]
        assert bits & bit == 0, "reward: already claimed"
        self.claimed_heights[msg.sender][word] = bits | bit

        # power <= signer_power: the signer is one of the powers summed.
        amount += self._rate_at(height) * power // signer_power

    self.owed -= amount
    self.total_claimed += amount
    if amount != 0:
        assert extcall token.transfer(msg.sender, amount, default_return_value=True), "reward: transfer failed"
    log RewardClaimed(account=msg.sender, amount=amount, heights=heights)
    return amount


# ============================================================================
# Views
# ============================================================================


@external
@view
def claimable(
    account: address, heights: DynArray[uint256, MAX_CLAIM_HEIGHTS], indices: DynArray[uint256, MAX_CLAIM_HEIGHTS]
) -> uint256:
    """
    @notice What `claim(heights, indices)` would pay `account` now (after
            its booking), skipping (counting 0 for) every height it could
            not claim.
    @param account The signer.
    @param heights The heights.
    @param indices The account's index in each height's validator set.
    @return uint256 The EMC claimable.
    """
    assert len(heights) == len(indices), "reward: length mismatch"
    source: address = self.consensus
    if source == empty(address):
        return 0
    booked: uint256 = 0
    cost: uint256 = 0
    booked, cost = self._bookable()
    amount: uint256 = 0
    for i: uint256 in range(len(heights), bound=MAX_CLAIM_HEIGHTS):
        height: uint256 = heights[i]
        index: uint256 = indices[i]
        if height == 0 or height > booked or index >= 128:
            continue
        bitmap: uint256 = 0
        signer_power: uint256 = 0
        epoch: uint256 = 0
        bitmap, signer_power, epoch = staticcall IComputeConsensus(source).signer_record(height)
        if (bitmap >> index) & 1 == 0:
            continue
        if self.claimed_heights[account][height >> 8] & (1 << (height & 255)) != 0:
            continue
        data: address = staticcall IComputeConsensus(source).validator_set(epoch)
        if data == empty(address):
            continue
        power: uint256 = 0
        member: address = empty(address)
        power, member = validator_set._member_power(data, index)
        if member != account:
            continue
        amount += self._rate_at(height) * power // signer_power
    return amount


@external
@view
def commit_record(height: uint256) -> (uint256, uint256, uint256, uint256):
    """
    @notice Height `height` as a claim sees it.
    @param height The height.
    @return uint256 The reward the height earns its signers.
    @return uint256 The sealed signers bitmap (0 while not sealed).
    @return uint256 The signers' power.
    @return uint256 The epoch.
    """
    bitmap: uint256 = 0
    signer_power: uint256 = 0
    epoch: uint256 = 0
    bitmap, signer_power, epoch = staticcall IComputeConsensus(self.consensus).signer_record(height)
    return self._rate_at(height), bitmap, signer_power, epoch


@external
@view
def reward_per_commit() -> uint256:
    """
    @notice The EMC each height not booked yet earns its signers.
    @return uint256 The current rate.
    """
    return self.rate_changes[self.rate_change_count - 1] & LOW_MASK


@external
@view
def has_claimed(account: address, height: uint256) -> bool:
    """
    @notice Whether `account` already claimed its share at `height`.
    @param account The signer.
    @param height The committed height.
    @return bool True once claimed.
    """
    return self.claimed_heights[account][height >> 8] & (1 << (height & 255)) != 0


@external
@view
def total_booked() -> uint256:
    """
    @notice Every reward ever booked, claimed or not.
    @return uint256 Owed plus claimed.
    """
    return self.owed + self.total_claimed


@external
@view
def available() -> uint256:
    """
    @notice The EMC held and not yet booked: what the next bookings can reserve.
    @return uint256 Balance less owed.
    """
    return staticcall token.balanceOf(self) - self.owed


# ============================================================================
# Governance
# ============================================================================


@external
def set_consensus(consensus: address):
    """
    @notice Wires the source of sealed signer sets (ComputeConsensus), once.
    @param consensus The consensus contract.
    """
    ow._check_owner()
    assert self.consensus == empty(address), "reward: consensus already set"
    assert consensus != empty(address), "reward: zero address"
    self.consensus = consensus
    log ConsensusSet(consensus=consensus)


@external
def set_reward_per_commit(amount: uint256):
    """
    @notice Sets the EMC each height not booked yet earns its signers.
    @dev Books first, so every height booked so far keeps its rate.
    @param amount The new reward per height, at most MAX_REWARD_PER_COMMIT.
    """
    ow._check_owner()
    assert amount <= MAX_REWARD_PER_COMMIT, "reward: reward too large"
    start: uint256 = self._book() + 1
    count: uint256 = self.rate_change_count
    if self.rate_changes[count - 1] >> 128 == start:
        # A second change before any new booking replaces the first.
        self.rate_changes[count - 1] = (start << 128) | amount
    else:
        assert count < MAX_RATE_CHANGES, "reward: too many rate changes"
        self.rate_changes[count] = (start << 128) | amount
        self.rate_change_count = count + 1
    log RewardPerCommitChanged(amount=amount, from_height=start)


# ============================================================================
# Internal
# ============================================================================


@internal
@view
def _rate_at(height: uint256) -> uint256:
    """
    @dev The rate of the last change that starts at or before `height`
         (changes are rare: the walk back is short).
    @param height The height.
    @return uint256 The EMC the height earns its signers.
    """
    count: uint256 = self.rate_change_count
    for step: uint256 in range(count, bound=MAX_RATE_CHANGES):
        packed: uint256 = self.rate_changes[count - 1 - step]
        if packed >> 128 <= height:
            return packed & LOW_MASK
    return 0


@internal
@view
def _bookable() -> (uint256, uint256):
    """
    @dev How far a booking now reaches and what it reserves: every sealed
         height the balance not yet owed pays for at the current rate (every
         height after `booked_through` is at the current rate, since a rate
         change books first and starts after the last booked height).
    @return uint256 The last height it books.
    @return uint256 The EMC it reserves.
    """
    through: uint256 = self.booked_through
    source: address = self.consensus
    if source == empty(address):
        return through, 0
    sealed: uint256 = staticcall IComputeConsensus(source).sealed_through()
    if sealed <= through:
        return through, 0
    count: uint256 = sealed - through
    rate: uint256 = self.rate_changes[self.rate_change_count - 1] & LOW_MASK
    if rate != 0:
        count = min(count, (staticcall token.balanceOf(self) - self.owed) // rate)
    return through + count, count * rate


@internal
def _book() -> uint256:
    """
    @dev Books what `_bookable` reaches.
    @return uint256 The last booked height.
    """
    through: uint256 = 0
    cost: uint256 = 0
    through, cost = self._bookable()
    if through != self.booked_through:
        self.booked_through = through
        owed: uint256 = self.owed + cost
        self.owed = owed
        log RewardsBooked(
            booked_through=through,
            reward_per_commit=self.rate_changes[self.rate_change_count - 1] & LOW_MASK,
            owed=owed,
        )
    return through
