# pragma version ~=0.4.3
"""
@title Validator Sets Stored as Contract Code
@custom:contract-name validator_set
@license GNU Affero General Public License v3.0 only
@notice An epoch's validator set is written once, at the epoch boundary, as
        the code of a data contract (the SSTORE2 pattern): members are read
        back with EXTCODECOPY for a few gas per byte instead of several cold
        storage slots each, and a commit calls the contract itself for its
        signers (`_signers`), so its gas grows only with the non-signers.
        The code is a program (`SET_PROGRAM`), then the data:
          [0, 128)    the aggregate G1 key of all members (EIP-2537)
          [128, 160)  the total voting power
          [160, 192)  the member count n
          then member i at 192 + 160 * i:
          [0, 128)    the member's G1 key, negated (so that subtracting a
                      non-signer from the aggregate is one G1ADD)
          [128, 160)  power (high 12 bytes, uint96) || address (low 20 bytes)
        The program, called with a signer bitmap as its one word of
        calldata, returns the signers' aggregate key (the aggregate plus
        every non-signer's negated key), the total power, n, and the
        non-signers' summed power; it ignores bits at or above n, reads no
        state and refuses value. It is assembled from the annotated listing
        in `offchain/chain/set_program.py` (which says why it is not Vyper),
        and tests check that the constant below matches it.
"""


# @dev The program every set's code starts with (see the docstring above).
SET_PROGRAM: constant(Bytes[274]) = x"3461007d5760c06101125f395f35600160a0511b600190039019165f905b80156100815780805f0316908118906f01061438916347932a5cd9d3ead7b77f0260801b60f91c6100920160019061013f396101205160a0026101d20160a0906080396101005160a01c8201915060805f6101005f600b611388fa61001d575b5f5ffd5b5060c052604061019260803960e05ff300010208030f0916041d10240a2b173205211e39114025470b3c2c4e1855335c061422301f453a5a124341632665486a0c283d522d674f71194a5674346c5d787f070e151c232a3120383f463b4d545b132f4459426264692751667049736b777e0d1b29373e4c532e586168506f72767d1a364b57606e757c355f6d7b5e7a79"
PROGRAM_SIZE: constant(uint256) = 274
SIGNERS_RESULT_SIZE: constant(uint256) = 224


# @dev The largest set: the program and 192 + 160 * 128 bytes of data stay
# under EIP-170's 24,576. The data bound carries 32 bytes of slack that
# Vyper's slice typing needs.
MAX_MEMBERS: constant(uint256) = 128
HEADER_SIZE: constant(uint256) = 192
ENTRY_SIZE: constant(uint256) = 160
MAX_DATA_SIZE: constant(uint256) = 20_704
# @dev Where the data, and member 0's entry, start in the code.
DATA_OFFSET: constant(uint256) = PROGRAM_SIZE
ENTRIES_OFFSET: constant(uint256) = DATA_OFFSET + HEADER_SIZE


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
    @dev Deploys `SET_PROGRAM` followed by `data` as the code of a new
         contract. The init code copies what follows it (from offset 10)
         and returns it: PUSH2 size, DUP1, PUSH1 10, RETURNDATASIZE,
         CODECOPY, RETURNDATASIZE, RETURN.
    @param data The set's data.
    @return address The data contract.
    """
    size: uint256 = PROGRAM_SIZE + len(data)
    prefix: bytes2 = convert(convert(size, uint16), bytes2)
    return raw_create(concat(x"61", prefix, x"80600a3d393df3", SET_PROGRAM, data))


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
    header: Bytes[HEADER_SIZE] = slice(data_contract.code, DATA_OFFSET, HEADER_SIZE)
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
    entry: Bytes[ENTRY_SIZE] = slice(data_contract.code, ENTRIES_OFFSET + ENTRY_SIZE * index, ENTRY_SIZE)
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
    packed: uint256 = convert(slice(data_contract.code, ENTRIES_OFFSET + ENTRY_SIZE * index + 128, 32), uint256)
    return packed >> 160, convert(packed & (2**160 - 1), address)


@internal
@view
def _signers(data_contract: address, bitmap: uint256) -> (Bytes[128], uint256, uint256, uint256):
    """
    @dev Runs the set's program for `bitmap`: one call, in which each
         non-signer costs one entry copy and one G1ADD and signers cost
         nothing. Bits at or above the member count are ignored: the caller
         checks that the bitmap fits.
    @param data_contract The set's data contract.
    @param bitmap Bit i set when member i signed.
    @return Bytes[128] The signers' aggregate key.
    @return uint256 The total power.
    @return uint256 The member count.
    @return uint256 The non-signers' summed power.
    """
    result: Bytes[SIGNERS_RESULT_SIZE] = raw_call(
        data_contract, abi_encode(bitmap), max_outsize=SIGNERS_RESULT_SIZE, is_static_call=True
    )
    assert len(result) == SIGNERS_RESULT_SIZE, "validator_set: no set program"
    return (
        slice(result, 0, 128),
        extract32(result, 128, output_type=uint256),
        extract32(result, 160, output_type=uint256),
        extract32(result, 192, output_type=uint256),
    )
