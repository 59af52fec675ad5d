# pragma version ~=0.4.3
"""
@title Staking, Slashing and the Node Registry
@custom:contract-name Staking
@license GNU Affero General Public License v3.0 only
@notice Agents stake EMC for roles (validator, router, compute: bit flags an
        account may combine), leave through an unbonding period, and can be
        slashed by the one slasher, the ComputeConsensus contract. Validators
        register a BLS12-381 key with a proof of possession checked on-chain.
        The node registry holds each compute node's capabilities: the fields
        a node declares itself (GPU, memory, storage, workloads) and the ones
        only consensus may write (measured E power, reputation, blacklist).
"""


from ethereum.ercs import IERC20

from snekmate.auth import ownable as ow
initializes: ow

from .modules import bls12_381


# @dev The slasher (ComputeConsensus) says which accounts sign now.
interface IValidatorSetView:
    def is_current_member(account: address) -> bool: view


# @dev Governance (the owner) sets parameters and wires the slasher; giving
# up ownership is left out on purpose, since parameters must stay settable.
exports: (ow.owner, ow.transfer_ownership)


# @dev The role bit flags.
ROLE_VALIDATOR: public(constant(uint256)) = 1
ROLE_ROUTER: public(constant(uint256)) = 2
ROLE_COMPUTE: public(constant(uint256)) = 4
ALL_ROLES: constant(uint256) = 7


# @dev Bounds that keep every loop and array finite. MAX_VALIDATORS is the
# number of seats in the candidate list (the size of the largest validator
# set, `modules/validator_set.vy`'s MAX_MEMBERS): seats are held, not used
# up, and a fuller stake takes the seat of the smallest.
MAX_VALIDATORS: public(constant(uint256)) = 128
MAX_WORKLOADS: public(constant(uint256)) = 16


# @dev The staked token.
token: public(immutable(IERC20))


# @dev Seconds between `request_unstake` and the earliest `withdraw`,
# within bounds: never zero (evidence must have time to land after a
# validator's set is replaced) and at most 30 days (stake is not frozen).
unbonding_period: public(uint256)
MIN_UNBONDING_PERIOD: public(constant(uint256)) = 60
MAX_UNBONDING_PERIOD: public(constant(uint256)) = 30 * 86_400


# @dev The largest minimum stake governance may set for a role.
MAX_MIN_STAKE: public(constant(uint256)) = 10_000_000 * 10**18


# @dev The minimum stake of each single role flag.
min_stake: public(HashMap[uint256, uint256])


# @dev The only address allowed to slash, and (once set) to write the
# consensus fields of the node registry: the ComputeConsensus contract.
slasher: public(address)


# @dev Tokens at stake per account.
staked: public(HashMap[address, uint256])


# @dev The role flags each account has staked for.
roles: public(HashMap[address, uint256])


# @dev Tokens leaving per account, still slashable until withdrawn.
pending_withdrawal: public(HashMap[address, uint256])


# @dev When each account's pending withdrawal unlocks.
withdrawable_at: public(HashMap[address, uint256])


# @dev Sums over all accounts: staked + pending equals this contract's balance.
total_staked: public(uint256)
total_pending: public(uint256)


# @dev Each validator's BLS12-381 public key, EIP-2537 encoded (128 bytes).
bls_public_key: public(HashMap[address, Bytes[128]])


# @dev Which account registered a key (by its keccak hash): a key counts
# once, and a key rotated away from stays reserved.
key_owner: public(HashMap[bytes32, address])


# @dev Seconds between `rotate_key` and the earliest `activate_key`.
KEY_ROTATION_DELAY: public(constant(uint256)) = 86_400


# @dev Each validator's announced next key, and when it may take effect.
pending_key: public(HashMap[address, Bytes[128]])
key_active_at: public(HashMap[address, uint256])


# @dev The validator candidates: accounts with a key that hold a seat.
# Consensus snapshots the active ones as each epoch's set. An account leaves
# the list when it unstakes entirely or when a larger stake takes its seat.
validator_list: DynArray[address, MAX_VALIDATORS]


# @dev Each candidate's position in `validator_list`, plus one (0: no seat).
seat: public(HashMap[address, uint256])


# @dev A compute node's entry in the registry.
struct Node:
    e_power: uint256
    reputation: uint256
    blacklisted: bool
    gpu_model: String[64]
    memory_mb: uint256
    storage_gb: uint256
    workloads: DynArray[String[32], MAX_WORKLOADS]


# @dev The node registry, by the node's (owner's) address.
nodes: public(HashMap[address, Node])


event Staked:
    account: indexed(address)
    roles: uint256
    amount: uint256
    total: uint256


event UnstakeRequested:
    account: indexed(address)
    amount: uint256
    remaining: uint256
    roles: uint256
    withdrawable_at: uint256


event Withdrawn:
    account: indexed(address)
    amount: uint256


event Slashed:
    account: indexed(address)
    amount: uint256
    requested: uint256
    reason: String[64]


event SlasherSet:
    slasher: indexed(address)


event MinStakeChanged:
    role: uint256
    amount: uint256


event UnbondingPeriodChanged:
    seconds: uint256


event ValidatorRegistered:
    account: indexed(address)
    public_key: Bytes[128]


event KeyRotationRequested:
    account: indexed(address)
    public_key: Bytes[128]
    active_at: uint256


event KeyRotated:
    account: indexed(address)
    public_key: Bytes[128]


event SeatTaken:
    account: indexed(address)
    evicted: indexed(address)


event SeatLeft:
    account: indexed(address)


event NodeDeclared:
    node: indexed(address)
    gpu_model: String[64]
    memory_mb: uint256
    storage_gb: uint256
    workloads: DynArray[String[32], MAX_WORKLOADS]


event NodeMeasured:
    node: indexed(address)
    e_power: uint256
    reputation: uint256


event NodeBlacklisted:
    node: indexed(address)
    blacklisted: bool


@deploy
def __init__(
    token_: IERC20,
    unbonding_period_: uint256,
    min_validator_stake: uint256,
    min_router_stake: uint256,
    min_compute_stake: uint256,
):
    """
    @dev The deployer becomes the owner (governance).
    @param token_ The EMC token.
    @param unbonding_period_ Seconds before unstaked tokens can leave.
    @param min_validator_stake The validator minimum.
    @param min_router_stake The router minimum.
    @param min_compute_stake The compute node minimum.
    """
    assert unbonding_period_ >= MIN_UNBONDING_PERIOD and unbonding_period_ <= MAX_UNBONDING_PERIOD, "staking: unbonding period out of bounds"
    for minimum: uint256 in [min_validator_stake, min_router_stake, min_compute_stake]:
        assert minimum != 0 and minimum <= MAX_MIN_STAKE, "staking: minimum stake out of bounds"
    ow.__init__()
    token = token_
    self.unbonding_period = unbonding_period_
    self.min_stake[ROLE_VALIDATOR] = min_validator_stake
    self.min_stake[ROLE_ROUTER] = min_router_stake
    self.min_stake[ROLE_COMPUTE] = min_compute_stake


# ============================================================================
# Staking
# ============================================================================


@external
def stake(role: uint256, amount: uint256):
    """
    @notice Stakes `amount` more EMC and takes on the roles in `role`.
    @dev The total stake must cover the sum of the minimums of every role
         the account holds, the new ones included.
    @param role One or more role flags.
    @param amount The EMC to add; the caller must have approved it.
    """
    assert role != 0 and role & ALL_ROLES == role, "staking: unknown role"
    assert amount != 0, "staking: zero amount"
    assert not self.nodes[msg.sender].blacklisted, "staking: blacklisted"
    new_roles: uint256 = self.roles[msg.sender] | role
    total: uint256 = self.staked[msg.sender] + amount
    assert total >= self._required_stake(new_roles), "staking: stake below minimum"

    self.staked[msg.sender] = total
    self.roles[msg.sender] = new_roles
    self.total_staked += amount
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "staking: transfer failed"
    log Staked(account=msg.sender, roles=new_roles, amount=amount, total=total)


@external
def request_unstake(amount: uint256):
    """
    @notice Starts unbonding `amount` of the caller's stake. Leaving entirely
            drops every role; a partial unstake must leave the minimum.
    @dev A second request adds to the pending amount and restarts the clock,
         so no part of a stake leaves sooner than one full period after it
         stopped backing the account's roles.
    @param amount The EMC to unbond.
    """
    assert amount != 0, "staking: zero amount"
    staked: uint256 = self.staked[msg.sender]
    assert amount <= staked, "staking: exceeds stake"
    remaining: uint256 = staked - amount
    roles: uint256 = self.roles[msg.sender]
    if remaining == 0:
        roles = 0
        self._leave_seat(msg.sender)
    else:
        assert remaining >= self._required_stake(roles), "staking: stake below minimum"

    self.staked[msg.sender] = remaining
    self.roles[msg.sender] = roles
    self.total_staked -= amount
    self.pending_withdrawal[msg.sender] += amount
    self.total_pending += amount
    unlock: uint256 = block.timestamp + self.unbonding_period
    self.withdrawable_at[msg.sender] = unlock
    log UnstakeRequested(account=msg.sender, amount=amount, remaining=remaining, roles=roles, withdrawable_at=unlock)


@external
def withdraw():
    """
    @notice Sends the caller's unbonded EMC back once the period has passed.
    """
    amount: uint256 = self.pending_withdrawal[msg.sender]
    assert amount != 0, "staking: nothing to withdraw"
    assert block.timestamp >= self.withdrawable_at[msg.sender], "staking: still unbonding"
    # A member of the validator set that signs now keeps all its stake, the
    # part leaving included, slashable until that set is replaced: its
    # voting power never outlives the stake behind it.
    slasher: address = self.slasher
    if slasher.is_contract:
        assert not staticcall IValidatorSetView(slasher).is_current_member(msg.sender), "staking: in the current validator set"
    self.pending_withdrawal[msg.sender] = 0
    self.total_pending -= amount
    assert extcall token.transfer(msg.sender, amount, default_return_value=True), "staking: transfer failed"
    log Withdrawn(account=msg.sender, amount=amount)


@external
def slash(account: address, amount: uint256, reason: String[64]) -> uint256:
    """
    @notice Takes up to `amount` from `account`'s stake, then from its pending
            withdrawal, and sends it to the slasher.
    @dev Capped at what the account has, so a slash never exceeds the stake.
         Pending withdrawals are slashable so unstaking cannot outrun evidence.
    @param account The offender.
    @param amount The EMC to take.
    @param reason A short reason, logged.
    @return uint256 The EMC actually taken.
    """
    assert msg.sender == self.slasher, "staking: caller is not the slasher"
    assert amount != 0, "staking: zero amount"
    staked: uint256 = self.staked[account]
    pending: uint256 = self.pending_withdrawal[account]
    taken: uint256 = min(amount, staked + pending)
    from_stake: uint256 = min(taken, staked)
    from_pending: uint256 = taken - from_stake

    self.staked[account] = staked - from_stake
    self.total_staked -= from_stake
    self.pending_withdrawal[account] = pending - from_pending
    self.total_pending -= from_pending
    if taken != 0:
        assert extcall token.transfer(msg.sender, taken, default_return_value=True), "staking: transfer failed"
    log Slashed(account=account, amount=taken, requested=amount, reason=reason)
    return taken


# ============================================================================
# Validators
# ============================================================================


@external
def register_validator(public_key: Bytes[128], proof_of_possession: Bytes[256]):
    """
    @notice Registers the caller's BLS12-381 key, which seals its consensus
            commits. The key must be a valid G1 point, not used by anyone
            else, and proven by a proof of possession bound to the caller
            (the key's PoP-domain signature of keccak256(compressed key ||
            caller), `offchain/crypto/bls.py`'s `prove_possession`), which
            rules out rogue-key attacks on aggregate signatures and keys
            front-run and squatted by another account.
    @param public_key The G1 key, EIP-2537 encoded (128 bytes).
    @param proof_of_possession The G2 proof, EIP-2537 encoded (256 bytes).
    """
    assert self._is_active(msg.sender, ROLE_VALIDATOR), "staking: not a staked validator"
    assert len(self.bls_public_key[msg.sender]) == 0, "staking: key already registered"
    key_hash: bytes32 = keccak256(public_key)
    assert self.key_owner[key_hash] == empty(address), "staking: key in use"
    assert bls12_381._is_valid_public_key(public_key), "staking: invalid public key"
    assert bls12_381._verify_possession(public_key, proof_of_possession, msg.sender), "staking: invalid proof of possession"

    self.bls_public_key[msg.sender] = public_key
    self.key_owner[key_hash] = msg.sender
    log ValidatorRegistered(account=msg.sender, public_key=public_key)
    self._take_seat(msg.sender)


@external
def rotate_key(public_key: Bytes[128], proof_of_possession: Bytes[256]):
    """
    @notice Announces the caller's next BLS key, proven by a possession
            proof bound to the caller; it takes effect with `activate_key`
            once KEY_ROTATION_DELAY has passed, and seals from the first
            validator set installed after that. A new announcement replaces
            the pending one and restarts the clock.
    @param public_key The new G1 key, EIP-2537 encoded.
    @param proof_of_possession Its proof, bound to the caller.
    """
    assert len(self.bls_public_key[msg.sender]) != 0, "staking: no key registered"
    key_hash: bytes32 = keccak256(public_key)
    assert self.key_owner[key_hash] == empty(address), "staking: key in use"
    assert bls12_381._is_valid_public_key(public_key), "staking: invalid public key"
    assert bls12_381._verify_possession(public_key, proof_of_possession, msg.sender), "staking: invalid proof of possession"
    previous: Bytes[128] = self.pending_key[msg.sender]
    if len(previous) != 0:
        self.key_owner[keccak256(previous)] = empty(address)
    self.key_owner[key_hash] = msg.sender
    self.pending_key[msg.sender] = public_key
    active_at: uint256 = block.timestamp + KEY_ROTATION_DELAY
    self.key_active_at[msg.sender] = active_at
    log KeyRotationRequested(account=msg.sender, public_key=public_key, active_at=active_at)


@external
def activate_key():
    """
    @notice Makes the caller's announced key its key, once the rotation
            delay has passed. The old key stays reserved: nobody can
            register it again. Sets already installed keep the key they
            were installed with (double-sign evidence is checked against
            it).
    """
    key: Bytes[128] = self.pending_key[msg.sender]
    assert len(key) != 0, "staking: no key rotation pending"
    assert block.timestamp >= self.key_active_at[msg.sender], "staking: key rotation delay not over"
    self.bls_public_key[msg.sender] = key
    self.pending_key[msg.sender] = b""
    self.key_active_at[msg.sender] = 0
    log KeyRotated(account=msg.sender, public_key=key)


@external
def take_seat():
    """
    @notice Puts the caller, a staked validator with a registered key, back
            in the candidate list: into a free seat, or into the seat of the
            candidate with the smallest stake (inactive ones count as zero)
            when the caller's stake is larger.
    """
    assert self._is_active(msg.sender, ROLE_VALIDATOR), "staking: not a staked validator"
    assert len(self.bls_public_key[msg.sender]) != 0, "staking: no key registered"
    assert self.seat[msg.sender] == 0, "staking: already seated"
    self._take_seat(msg.sender)


@external
@view
def validator_count() -> uint256:
    """
    @notice The number of validator candidates (seats held).
    @return uint256 The count.
    """
    return len(self.validator_list)


@external
@view
def validator_at(index: uint256) -> address:
    """
    @notice The candidate in seat `index`.
    @param index The position, from 0.
    @return address The account.
    """
    return self.validator_list[index]


@external
@view
def is_active(account: address, role: uint256) -> bool:
    """
    @notice Whether `account` holds every role in `role`, staked at least the
            minimum for all its roles, and is not blacklisted.
    @param account The account.
    @param role One or more role flags.
    @return bool True when active.
    """
    return self._is_active(account, role)


@external
@view
def required_stake(roles: uint256) -> uint256:
    """
    @notice The stake that the role flags in `roles` need together.
    @param roles One or more role flags.
    @return uint256 The sum of their minimums.
    """
    return self._required_stake(roles)


# ============================================================================
# Node registry
# ============================================================================


@external
def declare_node(gpu_model: String[64], memory_mb: uint256, storage_gb: uint256, workloads: DynArray[String[32], MAX_WORKLOADS]):
    """
    @notice Sets the caller's self-declared capabilities. Unstaked nodes may
            declare too: routers give them only intermittent tasks.
    @param gpu_model The GPU model, empty for none.
    @param memory_mb The memory offered, in MiB.
    @param storage_gb The storage offered, in GB.
    @param workloads The workload ids served.
    """
    node: Node = self.nodes[msg.sender]
    node.gpu_model = gpu_model
    node.memory_mb = memory_mb
    node.storage_gb = storage_gb
    node.workloads = workloads
    self.nodes[msg.sender] = node
    log NodeDeclared(node=msg.sender, gpu_model=gpu_model, memory_mb=memory_mb, storage_gb=storage_gb, workloads=workloads)


@external
def set_node_measurements(node: address, e_power: uint256, reputation: uint256):
    """
    @notice Records a node's measured E power and its reputation.
    @dev The owner until the consensus contract is wired, then only it.
    @param node The node.
    @param e_power The measured power, in E units.
    @param reputation The reputation score.
    """
    self._check_registry_writer()
    self.nodes[node].e_power = e_power
    self.nodes[node].reputation = reputation
    log NodeMeasured(node=node, e_power=e_power, reputation=reputation)


@external
def set_blacklisted(node: address, blacklisted: bool):
    """
    @notice Blacklists a node, or lifts its blacklisting. A blacklisted
            account is active in no role and cannot stake more.
    @dev The owner until the consensus contract is wired, then only it.
    @param node The node.
    @param blacklisted The new flag.
    """
    self._check_registry_writer()
    self.nodes[node].blacklisted = blacklisted
    log NodeBlacklisted(node=node, blacklisted=blacklisted)


@external
@view
def node_workloads(node: address) -> DynArray[String[32], MAX_WORKLOADS]:
    """
    @notice The workload ids a node declared.
    @param node The node.
    @return DynArray The workload ids.
    """
    return self.nodes[node].workloads


# ============================================================================
# Governance
# ============================================================================


@external
def set_slasher(slasher: address):
    """
    @notice Wires the one slasher (ComputeConsensus). It can be set once, and
            from then on it alone writes the registry's consensus fields.
    @param slasher The slasher's address.
    """
    ow._check_owner()
    assert self.slasher == empty(address), "staking: slasher already set"
    assert slasher != empty(address), "staking: zero address"
    self.slasher = slasher
    log SlasherSet(slasher=slasher)


@external
def set_min_stake(role: uint256, amount: uint256):
    """
    @notice Changes one role's minimum stake, within (0, MAX_MIN_STAKE].
            Existing stakes below the new minimum stop being active until
            topped up (a validator set with no active member carries over,
            so a raise cannot halt consensus).
    @param role A single role flag.
    @param amount The new minimum.
    """
    ow._check_owner()
    assert role == ROLE_VALIDATOR or role == ROLE_ROUTER or role == ROLE_COMPUTE, "staking: unknown role"
    assert amount != 0 and amount <= MAX_MIN_STAKE, "staking: minimum stake out of bounds"
    self.min_stake[role] = amount
    log MinStakeChanged(role=role, amount=amount)


@external
def set_unbonding_period(seconds: uint256):
    """
    @notice Changes the unbonding period for requests made from now on,
            within [MIN_UNBONDING_PERIOD, MAX_UNBONDING_PERIOD].
    @param seconds The new period.
    """
    ow._check_owner()
    assert seconds >= MIN_UNBONDING_PERIOD and seconds <= MAX_UNBONDING_PERIOD, "staking: unbonding period out of bounds"
    self.unbonding_period = seconds
    log UnbondingPeriodChanged(seconds=seconds)


@internal
@view
def _required_stake(roles: uint256) -> uint256:
    """
    @dev Sums the minimums of the set role flags.
    @param roles Role flags.
    @return uint256 The required stake.
    """
    required: uint256 = 0
    for role: uint256 in [ROLE_VALIDATOR, ROLE_ROUTER, ROLE_COMPUTE]:
        if roles & role != 0:
            required += self.min_stake[role]
    return required


@internal
@view
def _is_active(account: address, role: uint256) -> bool:
    """
    @dev See `is_active`.
    @param account The account.
    @param role Role flags.
    @return bool True when active.
    """
    roles: uint256 = self.roles[account]
    if role == 0 or roles & role != role or self.nodes[account].blacklisted:
        return False
    return self.staked[account] >= self._required_stake(roles)


@internal
def _check_registry_writer():
    """
    @dev The owner may write the registry's consensus fields until the
         slasher (ComputeConsensus) is wired; after that only the slasher.
    """
    if self.slasher == empty(address):
        ow._check_owner()
    else:
        assert msg.sender == self.slasher, "staking: caller is not the consensus contract"


@internal
def _take_seat(account: address):
    """
    @dev Seats `account`: in a free seat, else in the seat of the candidate
         with the smallest effective stake (zero when inactive), which must
         be strictly smaller than `account`'s. Entry is never closed for
         good: seats free up on unstaking and go to larger stakes.
    @param account A staked validator with a key and no seat.
    """
    count: uint256 = len(self.validator_list)
    if count < MAX_VALIDATORS:
        self.validator_list.append(account)
        self.seat[account] = count + 1
        log SeatTaken(account=account, evicted=empty(address))
        return
    smallest: uint256 = max_value(uint256)
    smallest_index: uint256 = 0
    for index: uint256 in range(MAX_VALIDATORS):
        candidate: address = self.validator_list[index]
        effective: uint256 = 0
        if self._is_active(candidate, ROLE_VALIDATOR):
            effective = self.staked[candidate]
        if effective < smallest:
            smallest = effective
            smallest_index = index
    assert self.staked[account] > smallest, "staking: stake below the smallest seat"
    evicted: address = self.validator_list[smallest_index]
    self.seat[evicted] = 0
    self.validator_list[smallest_index] = account
    self.seat[account] = smallest_index + 1
    log SeatTaken(account=account, evicted=evicted)


@internal
def _leave_seat(account: address):
    """
    @dev Frees `account`'s seat, if it holds one (the last seat moves in).
    @param account The candidate.
    """
    position: uint256 = self.seat[account]
    if position == 0:
        return
    last: address = self.validator_list.pop()
    if last != account:
        self.validator_list[position - 1] = last
        self.seat[last] = position
    self.seat[account] = 0
    log SeatLeft(account=account)
