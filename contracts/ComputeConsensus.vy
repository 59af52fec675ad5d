# pragma version ~=0.4.3
"""
@title Compute Consensus
@custom:contract-name ComputeConsensus
@license GNU Affero General Public License v3.0 only
@notice Accepts one commit per IBFT height from the staked validators: a
        batch root, a billing root, a rewards root and registry updates,
        sealed by a quorum's aggregate BLS12-381 signature over an EIP-712
        digest that this contract computes itself. It then settles the
        batch's billing in ComputeMarket, installs the rewards root in
        GPUComputeReward, books the signers' consensus reward, and applies
        the registry updates in Staking.
        The validator set is snapshotted from Staking once per epoch and
        stored as the code of a data contract (`modules/validator_set.vy`),
        with the aggregate key of all members: a commit subtracts the
        non-signers' keys from it, so its gas barely grows with the set.
        The last commit of an epoch, signed by the old set, installs the
        next set: changes take effect only at epoch boundaries.
        Consensus rewards follow sealed signer sets: each commit seals the
        bitmap of the previous height's signers as its quorum saw them
        (`parent_signers`), kept with their power in one slot per height
        (`signer_record`), and that height's reward is paid to them, so the
        submitter's choice of bitmap decides nothing but which signatures it
        aggregates.
        Anyone may report a validator that sealed two different digests at
        one height; it is slashed through Staking and the reporter is paid.
"""


from ethereum.ercs import IERC20

from snekmate.auth import ownable as ow
initializes: ow

from snekmate.utils import eip712_domain_separator as eip712
initializes: eip712

from .modules import bls12_381
from .modules import validator_set as vset
from .interfaces import IComputeMarket
from .interfaces import IGPUComputeReward
from .interfaces import IConsensusReward
from .interfaces import IComputeConsensus
implements: IComputeConsensus


# @dev Ownership only bootstraps the first validator set; eip712Domain is
# EIP-5267's description of the signing domain.
exports: (ow.owner, ow.transfer_ownership, eip712.eip712Domain)


# @dev The EIP-712 signing domain and the sealed type.
DOMAIN_NAME: constant(String[50]) = "EMC Compute Consensus"
DOMAIN_VERSION: constant(String[20]) = "1"
COMMIT_TYPE_HASH: constant(bytes32) = keccak256(
    "Commit(uint256 height,bytes32 batch_root,bytes32 billing_root,bytes32 rewards_root,uint256 rewards_total,bytes32 registry_hash,uint256 billed_total,uint256 parent_signers)"
)


# @dev Bounds: registry updates per commit, and validators read from Staking.
MAX_REGISTRY_UPDATES: constant(uint256) = 32
MAX_STAKING_VALIDATORS: constant(uint256) = vset.MAX_MEMBERS
ROLE_VALIDATOR: constant(uint256) = 1
BPS: constant(uint256) = 10_000


# @dev A double-sign costs this share of the power it signed with (half: the
# flat `double_sign_penalty` floor is half the minimum validator stake), so
# the penalty grows with the stake that could have been used to equivocate.
DOUBLE_SIGN_POWER_BPS: public(constant(uint256)) = 5_000


# @dev A consensus-measured change to one node's registry entry.
struct RegistryUpdate:
    node: address
    e_power: uint256
    reputation: uint256
    blacklisted: bool


# @dev The fields a commit seals, as double-sign evidence carries them.
struct CommitFields:
    height: uint256
    batch_root: bytes32
    billing_root: bytes32
    rewards_root: bytes32
    rewards_total: uint256
    registry_hash: bytes32
    billed_total: uint256
    parent_signers: uint256


# @dev The contract this one slashes through and reads validators from.
staking: public(immutable(address))


# @dev The contracts a commit settles into.
market: public(immutable(IComputeMarket))
gpu_reward: public(immutable(IGPUComputeReward))
consensus_reward: public(immutable(IConsensusReward))
token: public(immutable(IERC20))


# @dev Heights per epoch.
epoch_length: public(immutable(uint256))


# @dev What a proven double-sign costs the offender, and the reporter's cut.
double_sign_penalty: public(immutable(uint256))
reporter_share_bps: public(immutable(uint256))


# @dev The last committed height (low 128 bits; 0 before the first commit)
# and the epoch whose set signs the next height (high 128 bits): one slot,
# since every commit reads both.
progress: uint256
HALF_MASK: constant(uint256) = 2**128 - 1


# @dev Each epoch's validator-set data contract.
validator_set: public(HashMap[uint256, address])


# @dev Each height's signers: their summed power (high 128 bits) and bitmap
# (low 128 bits). A commit writes the signers it lists, and the next commit
# seals them as its parent_signers, rewriting the slot only when the quorum
# saw other signers. The one slot a commit writes per height; the digest and roots are only emitted in
# `StateCommitted` (ComputeMarket keeps the latest billing root,
# GPUComputeReward the latest rewards root).
signers_of: HashMap[uint256, uint256]


# @dev Evidence already acted on, by keccak256(validator, height).
evidence_used: public(HashMap[bytes32, bool])


event StateCommitted:
    height: indexed(uint256)
    epoch: indexed(uint256)
    digest: bytes32
    batch_root: bytes32
    billing_root: bytes32
    rewards_root: bytes32
    rewards_total: uint256
    registry_hash: bytes32
    billed_total: uint256
    parent_signers: uint256
    signers_bitmap: uint256
    signer_power: uint256
    total_power: uint256


event ValidatorSetInstalled:
    epoch: indexed(uint256)
    data_contract: address
    members: uint256
    total_power: uint256


event DoubleSignSlashed:
    validator: indexed(address)
    reporter: indexed(address)
    height: uint256
    digest_a: bytes32
    digest_b: bytes32
    slashed: uint256
    reporter_reward: uint256


@deploy
def __init__(
    staking_: address,
    token_: IERC20,
    market_: IComputeMarket,
    gpu_reward_: IGPUComputeReward,
    consensus_reward_: IConsensusReward,
    epoch_length_: uint256,
    double_sign_penalty_: uint256,
    reporter_share_bps_: uint256,
):
    """
    @dev Wires the contracts a commit touches; the first validator set is
         installed later by `bootstrap`, once validators have registered.
    @param staking_ Staking (validator keys, stakes, slashing, registry).
    @param token_ The EMC token.
    @param market_ ComputeMarket (billing).
    @param gpu_reward_ GPUComputeReward (rewards roots).
    @param consensus_reward_ ConsensusReward (signers' rewards).
    @param epoch_length_ Heights per epoch.
    @param double_sign_penalty_ The least EMC a proven double-sign costs
           (see `_double_sign_penalty`).
    @param reporter_share_bps_ The reporter's share of it, in basis points.
    """
    assert epoch_length_ != 0, "consensus: zero epoch length"
    assert reporter_share_bps_ <= BPS, "consensus: share above 100%"
    ow.__init__()
    eip712.__init__(DOMAIN_NAME, DOMAIN_VERSION)
    staking = staking_
    token = token_
    market = market_
    gpu_reward = gpu_reward_
    consensus_reward = consensus_reward_
    epoch_length = epoch_length_
    double_sign_penalty = double_sign_penalty_
    reporter_share_bps = reporter_share_bps_


# ============================================================================
# Commits
# ============================================================================


@external
def bootstrap():
    """
    @notice Installs epoch 0's validator set from Staking's active validators.
    @dev Once, by the owner, after the first validators registered their
         keys; the owner then renounces ownership.
    """
    ow._check_owner()
    assert self.validator_set[0] == empty(address), "consensus: already bootstrapped"
    assert self._install_set(0), "consensus: no active validators"
    # Ownership has no other use: give it up, so no owner ever stands
    # between the validators and their commits.
    ow._transfer_ownership(empty(address))


@external
def commit(
    height: uint256,
    batch_root: bytes32,
    billing_root: bytes32,
    rewards_root: bytes32,
    rewards_total: uint256,
    registry_updates: DynArray[RegistryUpdate, MAX_REGISTRY_UPDATES],
    billed_total: uint256,
    parent_signers: uint256,
    signers_bitmap: uint256,
    aggregate_signature: Bytes[256],
):
    """
    @notice Commits one height, sealed by a quorum of the epoch's set.
    @param height The next height: the last plus one.
    @param batch_root The root of the batch's invocation records.
    @param billing_root The root of (user, cumulative spent).
    @param rewards_root The root of (account, cumulative earned).
    @param rewards_total The sum of the rewards tree's leaves.
    @param registry_updates Measured node fields to write to Staking.
    @param billed_total The EMC this batch moves from escrow to rewards.
    @param parent_signers The signers of height - 1 (bit i: member i of
           that height's set), sealed: they are booked that height's
           consensus reward. Zero at height 1; a quorum otherwise.
    @param signers_bitmap Bit i set when member i signed (only selects
           the keys the aggregate signature is checked against).
    @param aggregate_signature The signers' aggregate BLS signature over
           the commit digest, EIP-2537 encoded.
    """
    progress: uint256 = self.progress
    last: uint256 = progress & HALF_MASK
    assert height > last, "consensus: height already committed"
    assert height == last + 1, "consensus: height skipped"
    epoch: uint256 = progress >> 128
    data_contract: address = self.validator_set[epoch]
    assert data_contract != empty(address), "consensus: no validator set"

    # Only the non-signers cost anything: the set's program subtracts each
    # one's key from the stored aggregate (keys are stored negated, so that
    # is one G1ADD) and sums their power. Signers are never read.
    aggregate_key: Bytes[128] = b""
    total_power: uint256 = 0
    members: uint256 = 0
    non_signer_power: uint256 = 0
    aggregate_key, total_power, members, non_signer_power = vset._signers(data_contract, signers_bitmap)
    assert signers_bitmap >> members == 0, "consensus: bitmap beyond the set"
    signer_power: uint256 = total_power - non_signer_power
    assert signer_power >= total_power * 2 // 3 + 1, "consensus: quorum not met"

    registry_hash: bytes32 = keccak256(abi_encode(registry_updates))
    digest: bytes32 = self._digest(
        CommitFields(
            height=height,
            batch_root=batch_root,
            billing_root=billing_root,
            rewards_root=rewards_root,
            rewards_total=rewards_total,
            registry_hash=registry_hash,
            billed_total=billed_total,
            parent_signers=parent_signers,
        )
    )
    status: uint256 = bls12_381._signature_status(aggregate_key, concat(digest, b""), aggregate_signature)
    assert status != bls12_381.PAIRING_CALL_FAILED, "consensus: pairing precompile failed"
    assert status == bls12_381.PAIRING_OK, "consensus: invalid signature"

    # Safe: height is last + 1 and heights stay far below 2**128.
    self.progress = (progress & ~HALF_MASK) | height
    log StateCommitted(
        height=height,
        epoch=epoch,
        digest=digest,
        batch_root=batch_root,
        billing_root=billing_root,
        rewards_root=rewards_root,
        rewards_total=rewards_total,
        registry_hash=registry_hash,
        billed_total=billed_total,
        parent_signers=parent_signers,
        signers_bitmap=signers_bitmap,
        signer_power=signer_power,
        total_power=total_power,
    )

    # Billing first, so the billed EMC is in GPUComputeReward before its
    # new root is checked against its funding.
    extcall market.settle(billed_total, billing_root)
    extcall gpu_reward.update_root(rewards_root, rewards_total)
    if height == 1:
        assert parent_signers == 0, "consensus: parent signers at height 1"
    elif self.signers_of[height - 1] & HALF_MASK != parent_signers:
        # The quorum sealed other signers for the parent than its submitter
        # listed (it saw more seals, or fewer): weigh them afresh. Usually
        # they are the same, and the parent's record stands as written.
        # Heights e*L+1 .. (e+1)*L belong to epoch e.
        parent_epoch: uint256 = (height - 2) // epoch_length
        parent_power: uint256 = 0
        if parent_epoch == epoch:
            # The set just read, header and all.
            parent_power = self._signer_power(data_contract, total_power, members, parent_signers)
        else:
            parent_set: address = self.validator_set[parent_epoch]
            parent_key: Bytes[128] = b""
            parent_total: uint256 = 0
            parent_members: uint256 = 0
            parent_key, parent_total, parent_members = vset._header(parent_set)
            parent_power = self._signer_power(parent_set, parent_total, parent_members, parent_signers)
        # Safe: the bitmap was checked to fit the set (128 members at most)
        # and the power is a sum of at most 128 uint96 stakes.
        self.signers_of[height - 1] = (parent_power << 128) | parent_signers
    # This height's signers as the submitter listed them (a quorum, checked
    # above), until the next commit seals them as its parent_signers.
    self.signers_of[height] = (signer_power << 128) | signers_bitmap
    for update: RegistryUpdate in registry_updates:
        extcall IStakingWriter(staking).set_node_measurements(update.node, update.e_power, update.reputation)
        extcall IStakingWriter(staking).set_blacklisted(update.node, update.blacklisted)

    if height % epoch_length == 0:
        # Through an external call to this contract: the snapshot's buffers
        # (a whole set, tens of kilobytes) then live in that call's memory.
        # Called internally, they would sit below commit's own frame, and
        # every commit would pay to expand memory past them.
        if not extcall ISelf(self).install_set(epoch + 1):
            # No active validator (say, a raised minimum stake): the set
            # carries over rather than halting consensus.
            self.validator_set[epoch + 1] = data_contract
            self.progress = ((epoch + 1) << 128) | height


@external
def install_set(epoch: uint256) -> bool:
    """
    @notice Snapshots epoch `epoch`'s set (see `_install_set`).
    @dev Only this contract, from the commit that ends an epoch.
    @param epoch The epoch the set signs for.
    @return bool False (nothing installed) when no candidate is active.
    """
    assert msg.sender == self, "consensus: caller is not consensus"
    return self._install_set(epoch)


@external
@view
def last_height() -> uint256:
    """
    @notice The last committed height (0 before the first commit).
    @return uint256 The height.
    """
    return self.progress & HALF_MASK


@external
@view
def current_epoch() -> uint256:
    """
    @notice The epoch whose set signs the next height.
    @return uint256 The epoch.
    """
    return self.progress >> 128


@external
@view
def commit_digest(fields: CommitFields) -> bytes32:
    """
    @notice The EIP-712 digest that validators seal for `fields`.
    @param fields The commit's fields (the registry updates by their hash).
    @return bytes32 The digest.
    """
    return self._digest(fields)


@external
@view
def registry_hash(registry_updates: DynArray[RegistryUpdate, MAX_REGISTRY_UPDATES]) -> bytes32:
    """
    @notice The hash of registry updates that a commit digest covers.
    @param registry_updates The updates.
    @return bytes32 keccak256 of their ABI encoding.
    """
    return keccak256(abi_encode(registry_updates))


@external
@view
def signer_record(height: uint256) -> (uint256, uint256, uint256):
    """
    @notice Height `height`'s sealed signers, as ConsensusReward pays them.
    @param height The height.
    @return uint256 The signers bitmap (0 while the height is not sealed).
    @return uint256 Their summed power.
    @return uint256 The epoch whose set they belong to.
    """
    if height == 0 or height >= self.progress & HALF_MASK:
        # Not sealed yet (the last height's record is only what its
        # submitter listed).
        return 0, 0, 0
    packed: uint256 = self.signers_of[height]
    return packed & HALF_MASK, packed >> 128, (height - 1) // epoch_length


@external
@view
def sealed_through() -> uint256:
    """
    @notice The last height whose signers are sealed: each commit seals its
            parent's, so every height but the last committed one.
    @return uint256 The height (0 before the second commit).
    """
    last: uint256 = self.progress & HALF_MASK
    if last == 0:
        return 0
    return last - 1


@external
@view
def quorum(total_power: uint256) -> uint256:
    """
    @notice The power a commit needs out of `total_power`: floor(2P/3) + 1.
    @param total_power The epoch's total voting power.
    @return uint256 The quorum.
    """
    return total_power * 2 // 3 + 1


@external
@view
def epoch_header(epoch: uint256) -> (Bytes[128], uint256, uint256):
    """
    @notice Epoch `epoch`'s aggregate key, total power and member count.
    @param epoch The epoch.
    @return Bytes[128] The aggregate key.
    @return uint256 The total power.
    @return uint256 The member count.
    """
    return vset._header(self.validator_set[epoch])


@external
@view
def is_current_member(account: address) -> bool:
    """
    @notice Whether `account` is a member of the set that signs the next
            height. Staking refuses such an account's withdrawal, so every
            signer's stake stays slashable while its set signs.
    @param account The account.
    @return bool True when a member.
    """
    data_contract: address = self.validator_set[self.progress >> 128]
    if data_contract == empty(address):
        return False
    aggregate_key: Bytes[128] = b""
    total_power: uint256 = 0
    members: uint256 = 0
    aggregate_key, total_power, members = vset._header(data_contract)
    for index: uint256 in range(members, bound=vset.MAX_MEMBERS):
        power: uint256 = 0
        member: address = empty(address)
        power, member = vset._member_power(data_contract, index)
        if member == account:
            return True
    return False


@external
@view
def epoch_member(epoch: uint256, index: uint256) -> (uint256, address):
    """
    @notice Member `index` of epoch `epoch`: its power and address.
    @param epoch The epoch.
    @param index The member's position (its bit in a signer bitmap).
    @return uint256 The power.
    @return address The validator.
    """
    return vset._member_power(self.validator_set[epoch], index)


# ============================================================================
# Double-sign evidence
# ============================================================================


@external
def report_double_sign(
    validator: address, a: CommitFields, signature_a: Bytes[256], b: CommitFields, signature_b: Bytes[256]
) -> uint256:
    """
    @notice Proves that `validator` sealed two different commit digests at
            one height, slashes it and pays the reporter its share; the rest
            funds the consensus rewards. The height must be the next one or
            one of the last `epoch_length` committed. Honest validators never do this,
            since a digest leaves out the IBFT round.
    @param validator The offender (its BLS key is read from the validator
           set of the height's epoch).
    @param a One sealed commit.
    @param signature_a The validator's BLS signature over `a`'s digest.
    @param b Another commit at the same height.
    @param signature_b The validator's BLS signature over `b`'s digest.
    @return uint256 The EMC slashed.
    """
    assert a.height == b.height, "consensus: evidence heights differ"
    # Only a height that can still be sealed or was sealed within the last
    # epoch's worth of heights: a leaked key cannot be slashed once per
    # made-up height, and evidence outlives no more than one epoch.
    last: uint256 = self.progress & HALF_MASK
    assert a.height != 0 and a.height <= last + 1 and a.height + epoch_length > last, "consensus: evidence height out of range"
    digest_a: bytes32 = self._digest(a)
    digest_b: bytes32 = self._digest(b)
    assert digest_a != digest_b, "consensus: evidence digests equal"
    # The key that sealed that height: the one in its epoch's set, whatever
    # key the validator rotated to since.
    key: Bytes[128] = b""
    power: uint256 = 0
    key, power = self._member_key((a.height - 1) // epoch_length, validator)
    assert len(key) == 128, "consensus: not a member at that height"
    evidence_id: bytes32 = keccak256(abi_encode(validator, a.height))
    assert not self.evidence_used[evidence_id], "consensus: evidence already used"
    assert bls12_381._verify_signature(key, concat(digest_a, b""), signature_a), "consensus: invalid evidence signature"
    assert bls12_381._verify_signature(key, concat(digest_b, b""), signature_b), "consensus: invalid evidence signature"

    self.evidence_used[evidence_id] = True
    slashed: uint256 = extcall IStakingWriter(staking).slash(validator, self._double_sign_penalty(power), "double sign")
    reporter_reward: uint256 = slashed * reporter_share_bps // BPS
    if msg.sender == validator:
        # A self-report earns nothing back: the whole slash funds rewards.
        reporter_reward = 0
    if reporter_reward != 0:
        assert extcall token.transfer(msg.sender, reporter_reward, default_return_value=True), "consensus: transfer failed"
    if slashed > reporter_reward:
        assert extcall token.transfer(consensus_reward.address, slashed - reporter_reward, default_return_value=True), "consensus: transfer failed"
    log DoubleSignSlashed(
        validator=validator,
        reporter=msg.sender,
        height=a.height,
        digest_a=digest_a,
        digest_b=digest_b,
        slashed=slashed,
        reporter_reward=reporter_reward,
    )
    return slashed


# ============================================================================
# Internal
# ============================================================================


interface IStakingReader:
    def validator_count() -> uint256: view
    def validator_at(index: uint256) -> address: view
    def is_active(account: address, role: uint256) -> bool: view
    def bls_public_key(account: address) -> Bytes[128]: view
    def staked(account: address) -> uint256: view


interface ISelf:
    def install_set(epoch: uint256) -> bool: nonpayable


interface IStakingWriter:
    def slash(account: address, amount: uint256, reason: String[64]) -> uint256: nonpayable
    def set_node_measurements(node: address, e_power: uint256, reputation: uint256): nonpayable
    def set_blacklisted(node: address, blacklisted: bool): nonpayable


@internal
@view
def _digest(fields: CommitFields) -> bytes32:
    """
    @dev EIP-712: keccak256(0x1901 || domain separator || struct hash),
         the domain bound to this chain id and this contract.
    @param fields The commit's fields.
    @return bytes32 The digest.
    """
    struct_hash: bytes32 = keccak256(
        abi_encode(
            COMMIT_TYPE_HASH,
            fields.height,
            fields.batch_root,
            fields.billing_root,
            fields.rewards_root,
            fields.rewards_total,
            fields.registry_hash,
            fields.billed_total,
            fields.parent_signers,
        )
    )
    return eip712._hash_typed_data_v4(struct_hash)


@internal
@view
def _member_key(epoch: uint256, account: address) -> (Bytes[128], uint256):
    """
    @dev `account`'s key and power in epoch `epoch`'s set, or empty and 0
         when not a member.
    @param epoch The epoch.
    @param account The account.
    @return Bytes[128] The G1 key (not negated), or empty.
    @return uint256 The power it signed with.
    """
    data_contract: address = self.validator_set[epoch]
    if data_contract == empty(address):
        return b"", 0
    aggregate_key: Bytes[128] = b""
    total_power: uint256 = 0
    members: uint256 = 0
    aggregate_key, total_power, members = vset._header(data_contract)
    for index: uint256 in range(members, bound=vset.MAX_MEMBERS):
        power: uint256 = 0
        member: address = empty(address)
        power, member = vset._member_power(data_contract, index)
        if member == account:
            negated_key: Bytes[128] = b""
            negated_key, power, member = vset._member(data_contract, index)
            return vset._negate_g1(negated_key), power
    return b"", 0


@internal
@view
def _double_sign_penalty(power: uint256) -> uint256:
    """
    @dev What a double-sign costs a validator that signed with `power`:
         DOUBLE_SIGN_POWER_BPS of that power, and never less than the flat
         `double_sign_penalty` (Staking caps it at what the account holds).
    @param power The offender's power in the height's set (its stake when
           the set was snapshotted).
    @return uint256 The EMC to slash.
    """
    return max(double_sign_penalty, power * DOUBLE_SIGN_POWER_BPS // BPS)


@internal
@view
def _signer_power(data_contract: address, total_power: uint256, members: uint256, bitmap: uint256) -> uint256:
    """
    @dev The summed power of the members in `bitmap`, which must be a
         quorum of the set in `data_contract`.
    @param data_contract The set's data contract.
    @param total_power The set's total power (from its header).
    @param members The set's member count (from its header).
    @param bitmap Bit i set for member i.
    @return uint256 Their power.
    """
    assert bitmap >> members == 0, "consensus: parent signers beyond the set"
    # Weighed by the members left out (a third at most of the power), as
    # the signature check does: signers' entries are never read.
    missing: uint256 = 0
    for index: uint256 in range(members, bound=vset.MAX_MEMBERS):
        if (bitmap >> index) & 1 == 0:
            member_power: uint256 = 0
            member: address = empty(address)
            member_power, member = vset._member_power(data_contract, index)
            missing += member_power
    power: uint256 = total_power - missing
    assert power >= total_power * 2 // 3 + 1, "consensus: parent signers below quorum"
    return power


@internal
def _install_set(epoch: uint256) -> bool:
    """
    @dev Snapshots Staking's active seated validators as epoch `epoch`'s
         set: power is stake.
    @param epoch The epoch the set signs for.
    @return bool False (nothing installed) when no candidate is active.
    """
    members: DynArray[vset.Member, vset.MAX_MEMBERS] = []
    aggregate_key: Bytes[128] = b""
    total_power: uint256 = 0
    count: uint256 = staticcall IStakingReader(staking).validator_count()
    for index: uint256 in range(count, bound=MAX_STAKING_VALIDATORS):
        if len(members) == vset.MAX_MEMBERS:
            break
        account: address = staticcall IStakingReader(staking).validator_at(index)
        if not staticcall IStakingReader(staking).is_active(account, ROLE_VALIDATOR):
            continue
        key: Bytes[128] = staticcall IStakingReader(staking).bls_public_key(account)
        power: uint256 = staticcall IStakingReader(staking).staked(account)
        members.append(vset.Member(key=key, power=power, account=account))
        total_power += power
        if len(aggregate_key) == 0:
            aggregate_key = key
        else:
            aggregate_key = bls12_381._add_g1(aggregate_key, key)
    if len(members) == 0:
        return False
    data_contract: address = vset._store(vset._encode(aggregate_key, total_power, members))
    self.validator_set[epoch] = data_contract
    self.progress = (epoch << 128) | (self.progress & HALF_MASK)
    log ValidatorSetInstalled(epoch=epoch, data_contract=data_contract, members=len(members), total_power=total_power)
    return True

