# pragma version ~=0.4.3
"""
@title Consensus Reward: a Reward per Commit, Split among its Signers by Stake
@custom:contract-name ConsensusReward
@license GNU Affero General Public License v3.0 only
@notice Every quorum-signed commit earns its signers `reward_per_commit`
        EMC, split by voting power. Commit gas must stay flat in the number
        of validators, so nothing is written per signer when a commit is
        recorded: the commit's reward, signer bitmap, signer power and
        epoch go into two storage slots, and each signer later claims its
        share by proving its index in that epoch's validator set (the data
        contract ComputeConsensus keeps per epoch).

        Funding is any EMC transferred here. Booking a commit reserves
        `min(reward_per_commit, available)`, where `available` is the
        balance not yet owed, so every booked reward stays payable. Integer
        division leaves at most one wei per signer of a commit unclaimed
        (dust that stays owed).
"""


from ethereum.ercs import IERC20

from .interfaces import IConsensusReward
implements: IConsensusReward

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
HALF: constant(uint256) = 2**128
LOW_MASK: constant(uint256) = 2**128 - 1


# @dev The reward token (EMC).
token: public(immutable(IERC20))


# @dev The only caller of `record_commit`, and the source of validator sets:
# the ComputeConsensus contract.
consensus: public(address)


# @dev The most a commit may book for its signers.
MAX_REWARD_PER_COMMIT: public(constant(uint256)) = 1_000 * 10**18


# @dev The EMC each commit books for its signers (fits 128 bits).
reward_per_commit: public(uint256)


# @dev Booked but not yet claimed: the balance always covers it.
owed: public(uint256)


# @dev Every reward ever paid; what was ever booked is `owed + total_claimed`
# (a view, so that booking a commit writes one counter less).
total_claimed: public(uint256)


# @dev Per height: reward (high 128 bits) || signers bitmap (low 128 bits).
commit_reward: HashMap[uint256, uint256]


# @dev Per height: signer power (high 128 bits) || epoch (low 128 bits);
# zero when no commit was recorded at that height.
commit_meta: HashMap[uint256, uint256]


# @dev Per account, per word (height // 256): bit height % 256 is set once
# the account claimed that height.
claimed_heights: HashMap[address, HashMap[uint256, uint256]]


event ConsensusSet:
    consensus: indexed(address)


event CommitRecorded:
    height: indexed(uint256)
    epoch: uint256
    signers_bitmap: uint256
    signer_power: uint256
    reward: uint256
    owed: uint256


event RewardClaimed:
    account: indexed(address)
    amount: uint256
    heights: DynArray[uint256, MAX_CLAIM_HEIGHTS]


event RewardPerCommitChanged:
    amount: uint256


@deploy
def __init__(token_: IERC20, reward_per_commit_: uint256):
    """
    @notice Deploys the reward contract; the deployer becomes the owner.
    @param token_ The reward token (EMC).
    @param reward_per_commit_ The EMC each commit books for its signers.
    """
    assert reward_per_commit_ <= MAX_REWARD_PER_COMMIT, "reward: reward too large"
    ow.__init__()
    token = token_
    self.reward_per_commit = reward_per_commit_


# ============================================================================
# Booking
# ============================================================================


@external
def record_commit(height: uint256, epoch: uint256, signers_bitmap: uint256, signer_power: uint256):
    """
    @notice Books one commit's reward for its signers, to be claimed lazily.
    @dev Only ComputeConsensus, once per height. Two fresh storage slots,
         whatever the number of signers.
    @param height The committed height.
    @param epoch The epoch whose validator set signed it.
    @param signers_bitmap Bit i set: member i of that set signed.
    @param signer_power The signers' summed voting power.
    """
    assert msg.sender == self.consensus, "reward: caller is not consensus"
    assert signers_bitmap != 0 and signers_bitmap < HALF, "reward: bad bitmap"
    assert signer_power != 0 and signer_power < HALF, "reward: bad signer power"
    assert epoch < HALF, "reward: epoch too large"
    assert self.commit_meta[height] == 0, "reward: height already recorded"

    owed: uint256 = self.owed
    available: uint256 = staticcall token.balanceOf(self) - owed
    reward: uint256 = min(self.reward_per_commit, available)
    owed += reward
    self.owed = owed
    # Safe: reward <= reward_per_commit < 2**128, and the bitmap, power and
    # epoch were checked to fit 128 bits.
    self.commit_reward[height] = (reward << 128) | signers_bitmap
    self.commit_meta[height] = (signer_power << 128) | epoch
    log CommitRecorded(
        height=height,
        epoch=epoch,
        signers_bitmap=signers_bitmap,
        signer_power=signer_power,
        reward=reward,
        owed=owed,
    )


# ============================================================================
# Claims
# ============================================================================


@external
def claim(
    heights: DynArray[uint256, MAX_CLAIM_HEIGHTS], indices: DynArray[uint256, MAX_CLAIM_HEIGHTS]
) -> uint256:
    """
    @notice Pays the caller its share of each commit at `heights` it signed.
    @dev Per height the caller names its index in that epoch's validator
         set; the set's data contract must hold the caller at that index,
         and the commit's bitmap must have that bit. Each (height, account)
         pays once; a repeat reverts.
    @param heights The committed heights.
    @param indices The caller's index in each height's validator set.
    @return uint256 The EMC paid.
    """
    assert len(heights) == len(indices), "reward: length mismatch"
    assert len(heights) != 0, "reward: nothing to claim"
    source: address = self.consensus
    assert source != empty(address), "reward: consensus not set"

    amount: uint256 = 0
    cached_epoch: uint256 = max_value(uint256)
    data: address = empty(address)
    for i: uint256 in range(len(heights), bound=MAX_CLAIM_HEIGHTS):
        height: uint256 = heights[i]
        index: uint256 = indices[i]
        meta: uint256 = self.commit_meta[height]
        assert meta != 0, "reward: height not recorded"
        packed: uint256 = self.commit_reward[height]
        assert index < 128 and (packed >> index) & 1 == 1, "reward: not a signer"

        epoch: uint256 = meta & LOW_MASK
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
        amount += (packed >> 128) * power // (meta >> 128)

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
    @notice What `claim(heights, indices)` would pay `account`, skipping
            (counting 0 for) every height it could not claim.
    @param account The signer.
    @param heights The committed heights.
    @param indices The account's index in each height's validator set.
    @return uint256 The EMC claimable.
    """
    assert len(heights) == len(indices), "reward: length mismatch"
    source: address = self.consensus
    if source == empty(address):
        return 0
    amount: uint256 = 0
    for i: uint256 in range(len(heights), bound=MAX_CLAIM_HEIGHTS):
        height: uint256 = heights[i]
        index: uint256 = indices[i]
        meta: uint256 = self.commit_meta[height]
        packed: uint256 = self.commit_reward[height]
        if meta == 0 or index >= 128 or (packed >> index) & 1 == 0:
            continue
        if self.claimed_heights[account][height >> 8] & (1 << (height & 255)) != 0:
            continue
        data: address = staticcall IComputeConsensus(source).validator_set(meta & LOW_MASK)
        if data == empty(address):
            continue
        power: uint256 = 0
        member: address = empty(address)
        power, member = validator_set._member_power(data, index)
        if member != account:
            continue
        amount += (packed >> 128) * power // (meta >> 128)
    return amount


@external
@view
def commit_record(height: uint256) -> (uint256, uint256, uint256, uint256):
    """
    @notice The booked commit at `height`, unpacked.
    @param height The committed height.
    @return uint256 The reward booked.
    @return uint256 The signers bitmap.
    @return uint256 The signers' power.
    @return uint256 The epoch.
    """
    packed: uint256 = self.commit_reward[height]
    meta: uint256 = self.commit_meta[height]
    return packed >> 128, packed & LOW_MASK, meta >> 128, meta & LOW_MASK


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
    @notice The EMC held and not yet booked: what the next commits can book.
    @return uint256 Balance less owed.
    """
    return staticcall token.balanceOf(self) - self.owed


# ============================================================================
# Governance
# ============================================================================


@external
def set_consensus(consensus: address):
    """
    @notice Wires the one caller of `record_commit` (ComputeConsensus), once.
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
    @notice Sets the EMC each commit books for its signers.
    @param amount The new reward per commit, at most MAX_REWARD_PER_COMMIT.
    """
    ow._check_owner()
    assert amount <= MAX_REWARD_PER_COMMIT, "reward: reward too large"
    self.reward_per_commit = amount
    log RewardPerCommitChanged(amount=amount)
