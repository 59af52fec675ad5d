# pragma version ~=0.4.3
"""
@title Validator Sets Stored as Contract Code
@custom:contract-name validator_set
@license GNU Affero General Public License v3.0 only
@notice An epoch's validator set is written once, at the epoch boundary, as
        the code of a data contract (the SSTORE2 pattern), and read back with
        EXTCODECOPY: a commit then reads every member's key and power for a
        few gas per byte instead of several cold storage slots per member,
        which keeps commit gas nearly flat in the number of validators.
        Layout of the data (the code is a 0x00 byte, so the contract cannot
        be called, followed by the data):
          [0, 128)    the aggregate G1 key of all members (EIP-2537)
          [128, 160)  the total voting power
          [160, 192)  the member count n
          then member i at 192 + 160 * i:
          [0, 128)    the member's G1 key, negated (so that subtracting a
                      non-signer from the aggregate is one G1ADD)
          [128, 160)  power (high 12 bytes, uint96) || address (low 20 bytes)
"""


# @dev The largest set: 192 + 160 * 128 bytes stays under EIP-170's 24,576.
# The buffer bound carries 32 bytes of slack that Vyper's slice typing needs.
MAX_MEMBERS: constant(uint256) = 128
HEADER_SIZE: constant(uint256) = 192
ENTRY_SIZE: constant(uint256) = 160
MAX_DATA_SIZE: constant(uint256) = 20_704
# @dev Where member 0's entry starts in the code (after the 0x00 byte).
ENTRIES_OFFSET: constant(uint256) = 1 + HEADER_SIZE


# @dev The base-field modulus p split into its high 16 and low 32 bytes.
FIELD_MODULUS_HIGH: constant(uint256) = 34565483545414906068789196026815425751
FIELD_MODULUS_LOW: constant(uint256) = 45442060874369865957053122457065728162598490762543039060009208264153100167851


# @dev One member as `_encode` takes it.
struct Member:
    key: Bytes[128]
    power: uint256
    account: address


# @dev One member's entry as five ABI words, so a whole set encodes with one
# `abi_encode` (Vyper cannot write bytes into a buffer in place).
struct EncodedEntry:
    key_0: bytes32
    key_1: bytes32
    key_2: bytes32
    key_3: bytes32
    power_and_account: bytes32


@internal
@view
def _encode(aggregate: Bytes[128], total_power: uint256, members: DynArray[Member, MAX_MEMBERS]) -> Bytes[MAX_DATA_SIZE]:
    """
    @dev Lays a set out as the data that `_store` deploys.
    @param aggregate The aggregate key of all members.
    @param total_power The members' summed power.
    @param members The members, keys not negated.
    @return Bytes[MAX_DATA_SIZE] The data.
    """
    entries: DynArray[EncodedEntry, MAX_MEMBERS] = []
    for member: Member in members:
        entry: Bytes[ENTRY_SIZE] = self._entry(member.key, member.power, member.account)
        entries.append(
            EncodedEntry(
                key_0=extract32(entry, 0),
                key_1=extract32(entry, 32),
                key_2=extract32(entry, 64),
                key_3=extract32(entry, 96),
                power_and_account=extract32(entry, 128),
            )
        )
    # A dynamic array of static tuples encodes as its length word, then the
    # tuples back to back: drop the length word and the entries are laid out.
    encoded: Bytes[32 + ENTRY_SIZE * MAX_MEMBERS] = abi_encode(entries, ensure_tuple=False)
    body: Bytes[32 + ENTRY_SIZE * MAX_MEMBERS] = slice(encoded, 32, ENTRY_SIZE * len(members))
    return concat(aggregate, convert(total_power, bytes32), convert(len(members), bytes32), body)


@internal
@pure
def _negate_g1(point: Bytes[128]) -> Bytes[128]:
    """
    @dev -P = (x, p - y) for a G1 point P that is not infinity, with the
         384-bit subtraction done in two limbs.
    @param point The point, EIP-2537 encoded.
    @return Bytes[128] The negated point.
    """
    y_high: uint256 = convert(slice(point, 80, 16), uint256)
    y_low: uint256 = convert(slice(point, 96, 32), uint256)
    borrow: uint256 = 0
    if y_low > FIELD_MODULUS_LOW:
        borrow = 1
    # Safe: y < p, so the high limb never underflows once the borrow is taken.
    low: uint256 = unsafe_sub(FIELD_MODULUS_LOW, y_low)
    high: uint256 = FIELD_MODULUS_HIGH - y_high - borrow
    return concat(slice(point, 0, 80), slice(convert(high, bytes32), 16, 16), convert(low, bytes32))


@internal
@pure
def _entry(key: Bytes[128], power: uint256, member: address) -> Bytes[160]:
    """
    @dev One member's 160 bytes: its negated key, then power || address.
    @param key The member's G1 key (not negated).
    @param power The voting power; must fit 96 bits.
    @param member The member's address.
    @return Bytes[160] The entry.
    """
    assert power < 2**96, "validator_set: power too large"
    return concat(self._negate_g1(key), convert((power << 160) | convert(member, uint256), bytes32))


@internal
def _store(data: Bytes[MAX_DATA_SIZE]) -> address:
    """
    @dev Deploys `data` as the code of a new contract, behind a 0x00 byte.
         The init code copies itself from offset 10 and returns it:
         PUSH2 size, DUP1, PUSH1 10, RETURNDATASIZE, CODECOPY,
         RETURNDATASIZE, RETURN.
    @param data The set's data.
    @return address The data contract.
    """
    size: uint256 = len(data) + 1
    prefix: bytes2 = convert(convert(size, uint16), bytes2)
    return raw_create(concat(x"61", prefix, x"80600a3d393df300", data))


@internal
@view
def _header(data_contract: address) -> (Bytes[128], uint256, uint256):
    """
    @dev Reads the aggregate key, total power and member count.
    @param data_contract The set's data contract.
    @return Bytes[128] The aggregate key.
    @return uint256 The total power.
    @return uint256 The member count.
    """
    header: Bytes[HEADER_SIZE] = slice(data_contract.code, 1, HEADER_SIZE)
    return slice(header, 0, 128), extract32(header, 128, output_type=uint256), extract32(header, 160, output_type=uint256)


@internal
@view
def _member(data_contract: address, index: uint256) -> (Bytes[128], uint256, address):
    """
    @dev Reads member `index`: its negated key, power and address.
    @param data_contract The set's data contract.
    @param index The member's position.
    @return Bytes[128] The negated key.
    @return uint256 The power.
    @return address The member.
    """
    entry: Bytes[ENTRY_SIZE] = slice(data_contract.code, 1 + HEADER_SIZE + ENTRY_SIZE * index, ENTRY_SIZE)
    packed: uint256 = extract32(entry, 128, output_type=uint256)
    return slice(entry, 0, 128), packed >> 160, convert(packed & (2**160 - 1), address)


@internal
@view
def _member_power(data_contract: address, index: uint256) -> (uint256, address):
    """
    @dev Reads member `index`'s power and address only.
    @param data_contract The set's data contract.
    @param index The member's position.
    @return uint256 The power.
    @return address The member.
    """
    packed: uint256 = convert(slice(data_contract.code, 1 + HEADER_SIZE + ENTRY_SIZE * index + 128, 32), uint256)
    return packed >> 160, convert(packed & (2**160 - 1), address)
