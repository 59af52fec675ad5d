# pragma version ~=0.4.3
"""
@title BLS12-381 Module Test Harness
@license GNU Affero General Public License v3.0 only
@notice Exposes the `bls12_381` module's internal functions so tests can
        compare them with py-ecc. Never deployed outside tests.
"""

from ..modules import bls12_381


@external
@view
def hash_to_g2(message: Bytes[64], pop_domain: bool) -> Bytes[256]:
    """
    @notice Hashes `message` to G2 under the signature or the PoP tag.
    """
    if pop_domain:
        return bls12_381._hash_to_g2(message, bls12_381.POP_DST)
    return bls12_381._hash_to_g2(message, bls12_381.SIGNATURE_DST)


@external
@view
def verify_signature(public_key: Bytes[128], message: Bytes[64], signature: Bytes[256]) -> bool:
    """
    @notice Verifies a signature under the signature tag.
    """
    return bls12_381._verify_signature(public_key, message, signature)


@external
@view
def verify_possession(public_key: Bytes[128], proof: Bytes[256], account: address) -> bool:
    """
    @notice Verifies a proof of possession bound to `account`.
    """
    return bls12_381._verify_possession(public_key, proof, account)


@external
@view
def is_valid_public_key(public_key: Bytes[128]) -> bool:
    """
    @notice Checks that a key is on G1's subgroup and not infinity.
    """
    return bls12_381._is_valid_public_key(public_key)


@external
@pure
def compress_g1(public_key: Bytes[128]) -> Bytes[48]:
    """
    @notice The compressed form of a G1 point.
    """
    return bls12_381._compress_g1(public_key)


@external
@view
def add_g1(a: Bytes[128], b: Bytes[128]) -> Bytes[128]:
    """
    @notice Adds two G1 points.
    """
    return bls12_381._add_g1(a, b)
