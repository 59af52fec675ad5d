# pragma version ~=0.4.3
"""
@title BLS12-381 Signature Checks over the EIP-2537 Precompiles
@custom:contract-name bls12_381
@license GNU Affero General Public License v3.0 only
@notice Stateless helpers shared by Staking (proofs of possession) and
        ComputeConsensus (aggregate commit seals). Keys live in G1, signatures
        in G2, with the proof-of-possession ciphersuite
        `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_` that py-ecc's
        `G2ProofOfPossession` implements off-chain.
        Encodings follow EIP-2537: a base-field element is 64 bytes big-endian
        (16 zero bytes, then 48), a G1 point is x || y (128 bytes), a G2 point
        is x.c0 || x.c1 || y.c0 || y.c1 (256 bytes), infinity is all zeros.
        Hashing to G2 follows RFC 9380: expand_message_xmd with SHA-256
        (precompile 0x02), reduction modulo p with MODEXP (0x05), then
        MAP_FP2_TO_G2 (0x11) on both field elements and G2ADD (0x0d); the
        map precompile clears the cofactor itself.
"""


# @dev The EIP-2537 precompiles (Prague addresses) and the two classic ones.
SHA256_PRECOMPILE: constant(address) = 0x0000000000000000000000000000000000000002
MODEXP_PRECOMPILE: constant(address) = 0x0000000000000000000000000000000000000005
G1ADD_PRECOMPILE: constant(address) = 0x000000000000000000000000000000000000000b
G1MSM_PRECOMPILE: constant(address) = 0x000000000000000000000000000000000000000C
G2ADD_PRECOMPILE: constant(address) = 0x000000000000000000000000000000000000000d
PAIRING_PRECOMPILE: constant(address) = 0x000000000000000000000000000000000000000F
MAP_FP2_TO_G2_PRECOMPILE: constant(address) = 0x0000000000000000000000000000000000000011


# @dev Gas handed to a precompile call that may fail on bad input. EIP-2537
# precompiles burn all the gas they are given when the input is invalid, so a
# cap keeps a rejected key or seal cheap. Pairing costs 32_600 * k + 37_700;
# G1MSM of one point costs 12_000; G1ADD 375.
PAIRING_2_GAS: constant(uint256) = 120_000
G1MSM_1_GAS: constant(uint256) = 20_000
G1ADD_GAS: constant(uint256) = 5_000


# @dev Domain separation tags of the ciphersuite (RFC 9380 / BLS signature draft).
SIGNATURE_DST: constant(Bytes[43]) = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
POP_DST: constant(Bytes[43]) = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"


# @dev The base-field modulus p, 48 bytes big-endian (the MODEXP modulus).
FIELD_MODULUS: constant(Bytes[48]) = x"1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab"


# @dev (p - 1) / 2 split into its high 16 bytes and low 32 bytes: a y
# coordinate above it is the "larger" root, flagged in compressed encodings.
HALF_MODULUS_HIGH: constant(uint256) = 17282741772707453034394598013407712875
HALF_MODULUS_LOW: constant(uint256) = 80617075055843030690312053732876818007934237714091801549733396136033114903893


# @dev The negated G1 generator, -g1, in EIP-2537 encoding.
NEG_G1_GENERATOR: constant(Bytes[128]) = x"0000000000000000000000000000000017f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb00000000000000000000000000000000114d1d6855d545a8aa7d76c8cf2e21f267816aef1db507c96655b9d5caac42364e6f38ba0ecb751bad54dcd6b939c2ca"


# @dev The longest message this module hashes: a 48-byte compressed key
# (proof of possession) or a 32-byte digest (commit seal) both fit.
MAX_MESSAGE_LENGTH: constant(uint256) = 64


@internal
@view
def _expand_message_xmd(message: Bytes[MAX_MESSAGE_LENGTH], dst: Bytes[43]) -> Bytes[256]:
    """
    @dev RFC 9380 section 5.3.1 with SHA-256, for len_in_bytes = 256
         (two Fp2 elements of two 64-byte chunks each), so ell = 8.
    @param message The message to expand.
    @param dst The 43-byte domain separation tag.
    @return Bytes[256] The 256 uniform bytes.
    """
    dst_prime: Bytes[44] = concat(dst, x"2b")  # I2OSP(len(dst) = 43, 1)
    # Z_pad (64 zero bytes) || msg || I2OSP(256, 2) || I2OSP(0, 1) || DST'
    b0: bytes32 = sha256(concat(empty(bytes32), empty(bytes32), message, x"010000", dst_prime))
    b1: bytes32 = sha256(concat(b0, x"01", dst_prime))
    b2: bytes32 = sha256(concat(self._xor(b0, b1), x"02", dst_prime))
    b3: bytes32 = sha256(concat(self._xor(b0, b2), x"03", dst_prime))
    b4: bytes32 = sha256(concat(self._xor(b0, b3), x"04", dst_prime))
    b5: bytes32 = sha256(concat(self._xor(b0, b4), x"05", dst_prime))
    b6: bytes32 = sha256(concat(self._xor(b0, b5), x"06", dst_prime))
    b7: bytes32 = sha256(concat(self._xor(b0, b6), x"07", dst_prime))
    b8: bytes32 = sha256(concat(self._xor(b0, b7), x"08", dst_prime))
    return concat(b1, b2, b3, b4, b5, b6, b7, b8)


@internal
@pure
def _xor(a: bytes32, b: bytes32) -> bytes32:
    """
    @dev Returns the bitwise xor of two words.
    @param a The first word.
    @param b The second word.
    @return bytes32 The xor.
    """
    return convert(convert(a, uint256) ^ convert(b, uint256), bytes32)


@internal
@view
def _reduce_fp(chunk: Bytes[64]) -> Bytes[64]:
    """
    @dev Reduces a 64-byte big-endian integer modulo p through MODEXP
         (base^1 mod p) and returns it as a 64-byte field element.
    @param chunk The 64-byte integer.
    @return Bytes[64] The EIP-2537 field element.
    """
    reduced: Bytes[48] = raw_call(
        MODEXP_PRECOMPILE,
        concat(convert(64, bytes32), convert(1, bytes32), convert(48, bytes32), chunk, x"01", FIELD_MODULUS),
        max_outsize=48,
        is_static_call=True,
    )
    return concat(empty(bytes16), reduced)


@internal
@view
def _hash_to_field(message: Bytes[MAX_MESSAGE_LENGTH], dst: Bytes[43]) -> (Bytes[128], Bytes[128]):
    """
    @dev RFC 9380 hash_to_field for Fp2 with count = 2: the two field
         elements u0, u1, each as c0 || c1 (128 bytes).
    @param message The message.
    @param dst The domain separation tag.
    @return Bytes[128] u0.
    @return Bytes[128] u1.
    """
    uniform: Bytes[256] = self._expand_message_xmd(message, dst)
    u0: Bytes[128] = concat(self._reduce_fp(slice(uniform, 0, 64)), self._reduce_fp(slice(uniform, 64, 64)))
    u1: Bytes[128] = concat(self._reduce_fp(slice(uniform, 128, 64)), self._reduce_fp(slice(uniform, 192, 64)))
    return u0, u1


@internal
@view
def _hash_to_g2(message: Bytes[MAX_MESSAGE_LENGTH], dst: Bytes[43]) -> Bytes[256]:
    """
    @dev RFC 9380 hash_to_curve into G2: map both field elements, then add.
    @param message The message.
    @param dst The domain separation tag.
    @return Bytes[256] The G2 point, EIP-2537 encoded.
    """
    u0: Bytes[128] = b""
    u1: Bytes[128] = b""
    u0, u1 = self._hash_to_field(message, dst)
    q0: Bytes[256] = raw_call(MAP_FP2_TO_G2_PRECOMPILE, u0, max_outsize=256, is_static_call=True)
    q1: Bytes[256] = raw_call(MAP_FP2_TO_G2_PRECOMPILE, u1, max_outsize=256, is_static_call=True)
    return raw_call(G2ADD_PRECOMPILE, concat(q0, q1), max_outsize=256, is_static_call=True)


# @dev Outcomes of a pairing check: verified, the precompile call failed (a
# point off its curve or outside its subgroup), or the pairing was not 1.
PAIRING_OK: constant(uint256) = 0
PAIRING_CALL_FAILED: constant(uint256) = 1
PAIRING_MISMATCH: constant(uint256) = 2


@internal
@view
def _pairing_status(public_key: Bytes[128], message_point: Bytes[256], signature: Bytes[256]) -> uint256:
    """
    @dev Checks e(-g1, signature) * e(public_key, message_point) == 1 and
         says how it went, without reverting.
    @param public_key The (aggregate) G1 key.
    @param message_point The message hashed to G2.
    @param signature The (aggregate) G2 signature.
    @return uint256 PAIRING_OK, PAIRING_CALL_FAILED or PAIRING_MISMATCH.
    """
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        PAIRING_PRECOMPILE,
        concat(NEG_G1_GENERATOR, signature, public_key, message_point),
        max_outsize=32,
        gas=PAIRING_2_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not success or len(response) != 32:
        return PAIRING_CALL_FAILED
    if convert(response, uint256) != 1:
        return PAIRING_MISMATCH
    return PAIRING_OK


@internal
@view
def _pairing_check(public_key: Bytes[128], message_point: Bytes[256], signature: Bytes[256]) -> bool:
    """
    @dev Whether the pairing check passes (a failed call counts as a fail).
    @param public_key The (aggregate) G1 key.
    @param message_point The message hashed to G2.
    @param signature The (aggregate) G2 signature.
    @return bool True when the signature verifies.
    """
    return self._pairing_status(public_key, message_point, signature) == PAIRING_OK


@internal
@view
def _signature_status(public_key: Bytes[128], message: Bytes[MAX_MESSAGE_LENGTH], signature: Bytes[256]) -> uint256:
    """
    @dev `_pairing_status` of a signature over `message` under the
         signature domain tag.
    @param public_key The (aggregate) G1 key.
    @param message The signed message.
    @param signature The G2 signature.
    @return uint256 PAIRING_OK, PAIRING_CALL_FAILED or PAIRING_MISMATCH.
    """
    return self._pairing_status(public_key, self._hash_to_g2(message, SIGNATURE_DST), signature)


@internal
@view
def _verify_signature(public_key: Bytes[128], message: Bytes[MAX_MESSAGE_LENGTH], signature: Bytes[256]) -> bool:
    """
    @dev Verifies a signature (or an aggregate over one message) under the
         signature domain tag.
    @param public_key The (aggregate) G1 key.
    @param message The signed message.
    @param signature The G2 signature.
    @return bool True when the signature verifies.
    """
    return self._pairing_check(public_key, self._hash_to_g2(message, SIGNATURE_DST), signature)


@internal
@view
def _is_valid_public_key(public_key: Bytes[128]) -> bool:
    """
    @dev A usable key is not the point at infinity (which would verify any
         signature of infinity) and lies on G1's prime-order subgroup: the
         G1MSM precompile performs both the curve and the subgroup check.
    @param public_key The G1 key.
    @return bool True when the key is usable.
    """
    if len(public_key) != 128:
        return False
    # y = 0 marks infinity (all zeros); no point of G1's odd-order subgroup has it.
    if extract32(public_key, 64) == empty(bytes32) and extract32(public_key, 96) == empty(bytes32):
        return False
    success: bool = False
    response: Bytes[128] = b""
    success, response = raw_call(
        G1MSM_PRECOMPILE,
        concat(public_key, convert(1, bytes32)),
        max_outsize=128,
        gas=G1MSM_1_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    return success and response == public_key


@internal
@pure
def _compress_g1(public_key: Bytes[128]) -> Bytes[48]:
    """
    @dev The 48-byte compressed form of a G1 point (ZCash serialization, as
         py-ecc's `G1_to_pubkey`): x with the compression flag, and the sign
         flag set when y is the larger root. It is the message a proof of
         possession signs.
    @param public_key A G1 point that is not infinity.
    @return Bytes[48] The compressed key.
    """
    y_high: uint256 = convert(slice(public_key, 80, 16), uint256)
    y_low: uint256 = convert(slice(public_key, 96, 32), uint256)
    flags: uint256 = 128  # the compression flag, 0x80
    if y_high > HALF_MODULUS_HIGH or (y_high == HALF_MODULUS_HIGH and y_low > HALF_MODULUS_LOW):
        flags |= 32  # the sign flag, 0x20
    # The top three bits of x are always clear since p < 2**381.
    first: uint256 = convert(slice(public_key, 16, 1), uint256) | flags
    return concat(convert(convert(first, uint8), bytes1), slice(public_key, 17, 47))


@internal
@view
def _verify_possession(public_key: Bytes[128], proof: Bytes[256], account: address) -> bool:
    """
    @dev Verifies a proof of possession bound to `account`: the key's
         signature, under the PoP domain tag, of keccak256(its compressed
         encoding || the account's 20 bytes). A proof seen in the mempool
         therefore cannot register the key for anyone else.
    @param public_key The G1 key, already checked with `_is_valid_public_key`.
    @param proof The G2 proof.
    @param account The account the key is registered for.
    @return bool True when the proof verifies.
    """
    message: Bytes[MAX_MESSAGE_LENGTH] = concat(keccak256(concat(self._compress_g1(public_key), convert(account, bytes20))), b"")
    return self._pairing_check(public_key, self._hash_to_g2(message, POP_DST), proof)


@internal
@view
def _add_g1(a: Bytes[128], b: Bytes[128]) -> Bytes[128]:
    """
    @dev Adds two G1 points (both already known to be valid).
    @param a The first point.
    @param b The second point.
    @return Bytes[128] The sum.
    """
    return raw_call(G1ADD_PRECOMPILE, concat(a, b), max_outsize=128, gas=G1ADD_GAS, is_static_call=True)
