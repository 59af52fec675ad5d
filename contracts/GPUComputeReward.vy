# pragma version ~=0.4.3
"""
@title GPU Compute Reward: Cumulative Earnings Claimed by Merkle Proof
@custom:contract-name GPUComputeReward
@license GNU Affero General Public License v3.0 only
@notice Compute node owners and routers are paid from a Merkle root of
        (account, total earned so far) that ComputeConsensus installs after
        every quorum-signed commit. Because each leaf is cumulative, one
        claim collects everything earned since the account's last claim,
        however many commits ago that was.

        Two sources fund the rewards:
          - billed totals: ComputeMarket.settle transfers each batch's
            billed EMC here (a plain token transfer) before consensus calls
            `update_root`, so the balance already holds them;
          - the emission pool: EMC reserved for proof-of-compute rewards
            (anyone may add to it with `fund_emission`), of which each
            commit releases `emission_per_commit` to back the rewards.
        Validators build the tree off-chain, splitting each invocation's
        price as `split_price` does: the router that routed it earns
        `router_share_bps`, the socket's issuer ISSUER_SHARE_BPS when a
        node other than the issuer served its (open) socket, and the
        serving node's owner the rest, plus the emission released by the
        commit.

        Solvency: a root is accepted only when the rewards still unclaimed
        under it (`rewards_total - total_claimed`) are covered by the EMC
        held outside the emission pool, and claims never pay out more than
        `rewards_total` in all.
"""


from ethereum.ercs import IERC20

from .interfaces import IGPUComputeReward
implements: IGPUComputeReward


from snekmate.auth import ownable as ow
initializes: ow

from .modules import merkle


# @dev Governance (the owner) sets the emission rate and the router share
# and wires consensus once; giving up ownership is left out on purpose,
# since parameters must stay settable.
exports: (ow.owner, ow.transfer_ownership)


# @dev Shares are in basis points.
BPS: public(constant(uint256)) = 10_000


# @dev The default router share: 10% of each invocation's price.
DEFAULT_ROUTER_SHARE_BPS: public(constant(uint256)) = 1_000


# @dev The issuer's share of each invocation's price when a node other
# than the socket's issuer served it: 10%. A constant, not a parameter:
# an issuer opened its socket to other nodes on this share.
ISSUER_SHARE_BPS: public(constant(uint256)) = 1_000


# @dev The most claims one `claim_many` call carries.
MAX_CLAIMS: public(constant(uint256)) = 32


# @dev The most a commit may release from the emission pool.
MAX_EMISSION_PER_COMMIT: public(constant(uint256)) = 1_000 * 10**18


# @dev The reward token (EMC).
token: public(immutable(IERC20))


# @dev The only caller of `update_root`: the ComputeConsensus contract.
consensus: public(address)


# @dev One slot, since every root reads and writes all three: EMC reserved
# for proof-of-compute emission and not yet backing rewards (low 112 bits),
# the EMC each commit releases from it (the next 80 bits, at most
# MAX_EMISSION_PER_COMMIT < 2**70) and how many roots consensus has
# installed (high 64 bits).
emission_state: uint256


# @dev The router's share of each invocation's price, in basis points; a
# parameter of the validators' tree building, published here. At most
# BPS - ISSUER_SHARE_BPS, so every split leaves the node a part.
router_share_bps: public(uint256)


# @dev The latest rewards root of (account, cumulative earned).
rewards_root: public(bytes32)


# @dev One slot, since roots and claims read both: the sum of all leaves
# under `rewards_root`, every reward ever earned (low 128 bits), and every
# reward paid out so far (high 128 bits).
reward_totals: uint256


# @dev Packed widths.
POOL_MASK: constant(uint256) = 2**112 - 1
RATE_MASK: constant(uint256) = 2**80 - 1
COUNT_MASK: constant(uint256) = 2**64 - 1
TOTAL_MASK: constant(uint256) = 2**128 - 1


# @dev Each account's cumulative earnings already paid.
claimed: public(HashMap[address, uint256])


event ConsensusSet:
    consensus: indexed(address)


event EmissionFunded:
    funder: indexed(address)
    amount: uint256
    emission_pool: uint256


event RootUpdated:
    root_count: uint256
    rewards_root: bytes32
    rewards_total: uint256
    emission_released: uint256
    emission_pool: uint256


event RootRefused:
    rewards_root: bytes32
    rewards_total: uint256
    reason: String[32]


event Claimed:
    account: indexed(address)
    caller: indexed(address)
    amount: uint256
    cumulative: uint256


event EmissionPerCommitChanged:
    amount: uint256


event RouterShareChanged:
    bps: uint256


@deploy
def __init__(token_: IERC20, emission_per_commit_: uint256):
    """
    @notice Deploys the reward contract; the deployer becomes the owner.
    @param token_ The reward token (EMC).
    @param emission_per_commit_ The EMC each commit releases from the
           emission pool.
    """
    ow.__init__()
    token = token_
    assert emission_per_commit_ <= MAX_EMISSION_PER_COMMIT, "reward: emission too large"
    self.emission_state = emission_per_commit_ << 112
    self.router_share_bps = DEFAULT_ROUTER_SHARE_BPS


# ============================================================================
# Funding and roots
# ============================================================================


@external
def fund_emission(amount: uint256):
    """
    @notice Adds `amount` EMC to the emission pool, from the caller.
    @dev The caller approves this contract first.
    @param amount The EMC to add.
    """
    assert amount != 0, "reward: zero amount"
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "reward: transfer failed"
    state: uint256 = self.emission_state
    pool: uint256 = (state & POOL_MASK) + amount
    assert pool <= POOL_MASK, "reward: emission pool too large"
    self.emission_state = (state & ~POOL_MASK) | pool
    log EmissionFunded(funder=msg.sender, amount=amount, emission_pool=pool)


@external
def update_root(rewards_root: bytes32, rewards_total: uint256) -> bool:
    """
    @notice Installs the rewards root of (account, cumulative earned) after
            a commit, and releases this commit's share of the emission pool.
    @dev Only ComputeConsensus. The billed total of the batch has already
         arrived (ComputeMarket.settle transfers it first), so the balance
         held outside the emission pool must cover every reward earned and
         not yet claimed. A root that does not (or whose total decreased)
         is refused without reverting: the commit still executes, the
         previous root stays, and a later commit's cumulative root, once
         funded, pays what this one would have.
    @param rewards_root The new root.
    @param rewards_total The sum of its leaves (cumulative, never lower).
    @return bool True when the root was installed.
    """
    assert msg.sender == self.consensus, "reward: caller is not consensus"
    totals: uint256 = self.reward_totals
    if rewards_total < totals & TOTAL_MASK:
        log RootRefused(rewards_root=rewards_root, rewards_total=rewards_total, reason="total decreased")
        return False

    state: uint256 = self.emission_state
    pool: uint256 = state & POOL_MASK
    released: uint256 = min((state >> 112) & RATE_MASK, pool)
    backing: uint256 = staticcall token.balanceOf(self) - (pool - released)
    # Safe: total_claimed never exceeds the previous rewards_total (see
    # `_claim`), which the check above keeps at or below rewards_total.
    # A total of 2**128 or more is beyond any supply: it cannot be funded.
    if rewards_total > TOTAL_MASK or unsafe_sub(rewards_total, totals >> 128) > backing:
        log RootRefused(rewards_root=rewards_root, rewards_total=rewards_total, reason="root exceeds funding")
        return False

    pool -= released
    count: uint256 = (state >> 192) + 1
    self.emission_state = (count << 192) | (state & (RATE_MASK << 112)) | pool
    self.rewards_root = rewards_root
    self.reward_totals = (totals & ~TOTAL_MASK) | rewards_total
    log RootUpdated(
        root_count=count,
        rewards_root=rewards_root,
        rewards_total=rewards_total,
        emission_released=released,
        emission_pool=pool,
    )
    return True


# ============================================================================
# Claims
# ============================================================================


@external
def claim(account: address, cumulative: uint256, proof: DynArray[bytes32, merkle.MAX_PROOF_DEPTH]) -> uint256:
    """
    @notice Pays `account` its earnings not yet claimed, proven by its leaf
            (account, cumulative) under the current root.
    @dev Anyone may submit; the EMC always goes to `account`. A leaf that
         holds nothing new pays 0, without a transfer or an event.
    @param account The earner.
    @param cumulative Its total earned so far, as the leaf says.
    @param proof The leaf's Merkle proof.
    @return uint256 The EMC paid.
    """
    return self._claim(account, cumulative, proof)


@external
def claim_many(
    accounts: DynArray[address, MAX_CLAIMS],
    cumulatives: DynArray[uint256, MAX_CLAIMS],
    proofs: DynArray[DynArray[bytes32, merkle.MAX_PROOF_DEPTH], MAX_CLAIMS],
) -> uint256:
    """
    @notice Claims for several accounts at once, each as `claim` does.
    @dev One invalid proof reverts the whole call.
    @param accounts The earners.
    @param cumulatives Their totals earned so far.
    @param proofs Their Merkle proofs.
    @return uint256 The EMC paid, over all accounts.
    """
    assert len(accounts) == len(cumulatives) and len(accounts) == len(proofs), "reward: length mismatch"
    paid: uint256 = 0
    for i: uint256 in range(len(accounts), bound=MAX_CLAIMS):
        paid += self._claim(accounts[i], cumulatives[i], proofs[i])
    return paid


# ============================================================================
# Views
# ============================================================================


@external
@pure
def rewards_leaf(account: address, cumulative: uint256) -> bytes32:
    """
    @notice The rewards tree leaf of (`account`, `cumulative`).
    @param account The earner.
    @param cumulative Its total earned so far.
    @return bytes32 keccak256(keccak256(abi_encode(LEAF_TYPE_REWARDS, account, cumulative))).
    """
    return self._rewards_leaf(account, cumulative)


@external
@view
def backing() -> uint256:
    """
    @notice The EMC held outside the emission pool, backing rewards.
    @return uint256 Balance less the emission pool.
    """
    return staticcall token.balanceOf(self) - (self.emission_state & POOL_MASK)


@external
@view
def emission_pool() -> uint256:
    """
    @notice EMC reserved for proof-of-compute emission, not yet backing rewards.
    @return uint256 The pool.
    """
    return self.emission_state & POOL_MASK


@external
@view
def emission_per_commit() -> uint256:
    """
    @notice The EMC each commit releases from the emission pool.
    @return uint256 The amount.
    """
    return (self.emission_state >> 112) & RATE_MASK


@external
@view
def root_count() -> uint256:
    """
    @notice How many roots consensus has installed.
    @return uint256 The count.
    """
    return self.emission_state >> 192


@external
@view
def rewards_total() -> uint256:
    """
    @notice The sum of all leaves under `rewards_root`: every reward ever earned.
    @return uint256 The EMC.
    """
    return self.reward_totals & TOTAL_MASK


@external
@view
def total_claimed() -> uint256:
    """
    @notice Every reward paid out so far, over all accounts.
    @return uint256 The EMC.
    """
    return self.reward_totals >> 128


# ============================================================================
# Governance
# ============================================================================


@external
def set_consensus(consensus: address):
    """
    @notice Wires the one caller of `update_root` (ComputeConsensus), once.
    @param consensus The consensus contract.
    """
    ow._check_owner()
    assert self.consensus == empty(address), "reward: consensus already set"
    assert consensus != empty(address), "reward: zero address"
    self.consensus = consensus
    log ConsensusSet(consensus=consensus)


@external
def set_emission_per_commit(amount: uint256):
    """
    @notice Sets the EMC each commit releases from the emission pool, at
            most MAX_EMISSION_PER_COMMIT (emission only ever comes out of
            the funded pool).
    @param amount The new emission per commit.
    """
    ow._check_owner()
    assert amount <= MAX_EMISSION_PER_COMMIT, "reward: emission too large"
    self.emission_state = (self.emission_state & ~(RATE_MASK << 112)) | (amount << 112)
    log EmissionPerCommitChanged(amount=amount)


@external
def set_router_share_bps(bps: uint256):
    """
    @notice Sets the routers' share of each invocation's price.
    @param bps The share in basis points, at most 10_000 less the
           issuer's share (9_000).
    """
    ow._check_owner()
    assert bps <= BPS - ISSUER_SHARE_BPS, "reward: shares above 100%"
    self.router_share_bps = bps
    log RouterShareChanged(bps=bps)


# ============================================================================
# The price split
# ============================================================================


@external
@view
def split_price(price: uint256, issuer_served: bool) -> (uint256, uint256, uint256):
    """
    @notice Who is paid what out of one invocation's `price`: the serving
            node's owner, the router that routed it and the socket's
            issuer. The router gets `router_share_bps` of the price; the
            issuer ISSUER_SHARE_BPS unless it served the invocation itself
            (then it is paid as the node); the node the rest. Shares round
            down, so the parts sum to the price.
    @param price The price of the invocation, in EMC wei.
    @param issuer_served Whether the serving node is the socket's issuer.
    @return uint256 The node's part.
    @return uint256 The router's part.
    @return uint256 The issuer's part.
    """
    router: uint256 = self._share(price, self.router_share_bps)
    issuer: uint256 = 0
    if not issuer_served:
        issuer = self._share(price, ISSUER_SHARE_BPS)
    return price - router - issuer, router, issuer


# ============================================================================
# Internal
# ============================================================================


@internal
@pure
def _share(price: uint256, bps: uint256) -> uint256:
    """
    @dev floor(price * bps / BPS) for any uint256 price, without overflow.
    @param price The price.
    @param bps The share, at most BPS.
    @return uint256 The share of the price.
    """
    return price // BPS * bps + price % BPS * bps // BPS


@internal
@pure
def _rewards_leaf(account: address, cumulative: uint256) -> bytes32:
    """
    @dev The leaf of one (account, cumulative earned) record.
    @param account The earner.
    @param cumulative Its total earned so far.
    @return bytes32 The tree leaf.
    """
    return merkle._leaf(keccak256(abi_encode(merkle.LEAF_TYPE_REWARDS, account, cumulative)))


@internal
def _claim(account: address, cumulative: uint256, proof: DynArray[bytes32, merkle.MAX_PROOF_DEPTH]) -> uint256:
    """
    @dev Verifies the leaf and pays what it holds beyond past claims.
    @param account The earner.
    @param cumulative Its total earned so far.
    @param proof The leaf's Merkle proof.
    @return uint256 The EMC paid.
    """
    assert merkle._verify(self.rewards_root, self._rewards_leaf(account, cumulative), proof), "reward: invalid proof"
    already: uint256 = self.claimed[account]
    if cumulative <= already:
        return 0
    # Safe: cumulative > already was just checked.
    amount: uint256 = unsafe_sub(cumulative, already)
    totals: uint256 = self.reward_totals
    total: uint256 = (totals >> 128) + amount
    # Honest roots never trip this: it caps all payouts at the declared
    # total even if a root ever lowered some account's leaf.
    assert total <= totals & TOTAL_MASK, "reward: claims exceed total"
    self.claimed[account] = cumulative
    self.reward_totals = (total << 128) | (totals & TOTAL_MASK)
    assert extcall token.transfer(account, amount, default_return_value=True), "reward: transfer failed"
    log Claimed(account=account, caller=msg.sender, amount=amount, cumulative=cumulative)
    return amount
