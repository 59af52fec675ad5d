"""BLS12-381 signatures for validator seals, over py-ecc, and their EIP-2537 byte encodings.

Keys are in G1 (48-byte compressed), signatures in G2 (96-byte compressed), with the
proof-of-possession ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``: aggregating
signatures on one message is safe once every key has proven possession. The contracts receive
points uncompressed in the EIP-2537 layout: each base-field element is 64 bytes big-endian (16
zero bytes, then 48), a G1 point is x||y (128 bytes), a G2 point is x.c0||x.c1||y.c0||y.c1
(256 bytes), and the point at infinity is all zeros.
"""

import hashlib
import os
from collections.abc import Sequence

from py_ecc.bls import G2ProofOfPossession as _pop
from py_ecc.bls.g2_primitives import (
    G1_to_pubkey,
    G2_to_signature,
    pubkey_to_G1,
    signature_to_G2,
)
from py_ecc.bls.hash_to_curve import hash_to_field_FQ2, hash_to_G2
from py_ecc.fields import optimized_bls12_381_FQ as FQ
from py_ecc.fields import optimized_bls12_381_FQ2 as FQ2
from py_ecc.optimized_bls12_381 import Z1, Z2, add, field_modulus, is_inf, normalize

from offchain.crypto.hashing import keccak

SIGNATURE_DST = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
POP_DST = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
FIELD_MODULUS = field_modulus
FP_SIZE = 64
G1_SIZE = 128
G2_SIZE = 256


class InvalidPoint(ValueError):
    """Bytes that are not a valid point encoding."""


# --- keys and signatures (compressed, as py-ecc speaks them) -------------------------------


def keygen(seed: bytes | None = None) -> int:
    """Return a secret key, fresh or derived from ``seed`` (any length)."""
    ikm = os.urandom(32) if seed is None else hashlib.sha256(b"emc-bls" + seed).digest()
    return _pop.KeyGen(ikm)


def public_key(secret_key: int) -> bytes:
    """Return the 48-byte compressed G1 public key of ``secret_key``."""
    return _pop.SkToPk(secret_key)


def sign(secret_key: int, message: bytes) -> bytes:
    """Return the 96-byte compressed signature of ``message``."""
    return _pop.Sign(secret_key, message)


def verify(pubkey: bytes, message: bytes, signature: bytes) -> bool:
    """Check one signature."""
    return _pop.Verify(pubkey, message, signature)


def aggregate_signatures(signatures: Sequence[bytes]) -> bytes:
    """Return the aggregate of compressed signatures."""
    if not signatures:
        raise ValueError("nothing to aggregate")
    return _pop.Aggregate(list(signatures))


def aggregate_public_keys(pubkeys: Sequence[bytes]) -> bytes:
    """Return the aggregate of compressed public keys."""
    if not pubkeys:
        raise ValueError("nothing to aggregate")
    return _pop._AggregatePKs(list(pubkeys))


def verify_aggregate(pubkeys: Sequence[bytes], message: bytes, signature: bytes) -> bool:
    """Check an aggregate signature by ``pubkeys`` on one ``message``."""
    return _pop.FastAggregateVerify(list(pubkeys), message, signature)


def possession_message(pubkey: bytes, account: str) -> bytes:
    """Return what a proof of possession signs: keccak256(compressed key || account's 20 bytes).

    Binding the registering account means a proof seen in the mempool cannot register the key
    for another account (Staking.register_validator checks it against msg.sender).
    """
    return keccak(pubkey + bytes.fromhex(account.removeprefix("0x")))


def prove_possession(secret_key: int, account: str) -> bytes:
    """Return the proof of possession of ``secret_key`` bound to ``account`` (PoP domain tag)."""
    message = possession_message(public_key(secret_key), account)
    return _pop._CoreSign(secret_key, message, POP_DST)


def verify_possession(pubkey: bytes, proof: bytes, account: str) -> bool:
    """Check a proof of possession bound to ``account``."""
    try:
        return _pop._CoreVerify(pubkey, possession_message(pubkey, account), proof, POP_DST)
    except (ValueError, TypeError, AssertionError):
        return False


# --- EIP-2537 encodings --------------------------------------------------------------------


def encode_fp(value: int) -> bytes:
    """Return a base-field element as 64 bytes big-endian."""
    if not 0 <= value < FIELD_MODULUS:
        raise InvalidPoint("field element out of range")
    return value.to_bytes(FP_SIZE, "big")


def decode_fp(data: bytes) -> int:
    """Return the base-field element of 64 bytes, checking the zero padding and the range."""
    if len(data) != FP_SIZE or any(data[:16]):
        raise InvalidPoint("a field element is 64 bytes with 16 leading zero bytes")
    value = int.from_bytes(data, "big")
    if value >= FIELD_MODULUS:
        raise InvalidPoint("field element not below the modulus")
    return value


def encode_g1_point(point) -> bytes:
    """Return a py-ecc G1 point (projective) as 128 bytes."""
    if is_inf(point):
        return b"\x00" * G1_SIZE
    x, y = normalize(point)
    return encode_fp(x.n) + encode_fp(y.n)


def encode_g2_point(point) -> bytes:
    """Return a py-ecc G2 point (projective) as 256 bytes."""
    if is_inf(point):
        return b"\x00" * G2_SIZE
    x, y = normalize(point)
    return b"".join(encode_fp(c) for c in (*x.coeffs, *y.coeffs))


def decode_g1_point(data: bytes):
    """Return the py-ecc G1 point of 128 bytes (not checked to be on the curve)."""
    if len(data) != G1_SIZE:
        raise InvalidPoint("a G1 point is 128 bytes")
    if not any(data):
        return Z1
    return (FQ(decode_fp(data[:64])), FQ(decode_fp(data[64:])), FQ.one())


def decode_g2_point(data: bytes):
    """Return the py-ecc G2 point of 256 bytes (not checked to be on the curve)."""
    if len(data) != G2_SIZE:
        raise InvalidPoint("a G2 point is 256 bytes")
    if not any(data):
        return Z2
    c = [decode_fp(data[i : i + 64]) for i in range(0, G2_SIZE, 64)]
    return (FQ2([c[0], c[1]]), FQ2([c[2], c[3]]), FQ2.one())


def pubkey_to_eip2537(pubkey: bytes) -> bytes:
    """Return a compressed public key as a 128-byte EIP-2537 G1 point."""
    return encode_g1_point(pubkey_to_G1(pubkey))


def signature_to_eip2537(signature: bytes) -> bytes:
    """Return a compressed signature as a 256-byte EIP-2537 G2 point."""
    return encode_g2_point(signature_to_G2(signature))


def eip2537_to_pubkey(data: bytes) -> bytes:
    """Return the compressed public key of a 128-byte EIP-2537 G1 point."""
    return G1_to_pubkey(decode_g1_point(data))


def eip2537_to_signature(data: bytes) -> bytes:
    """Return the compressed signature of a 256-byte EIP-2537 G2 point."""
    return G2_to_signature(decode_g2_point(data))


def hash_to_g2_eip2537(message: bytes, dst: bytes = SIGNATURE_DST) -> bytes:
    """Return RFC 9380 hash_to_curve of ``message`` into G2, as 256 bytes."""
    return encode_g2_point(hash_to_G2(message, dst, hashlib.sha256))


def hash_to_field_eip2537(message: bytes, dst: bytes = SIGNATURE_DST) -> tuple[bytes, bytes]:
    """Return the two Fp2 elements u0, u1 that hash_to_curve maps, each as 128 bytes."""
    u0, u1 = hash_to_field_FQ2(message, 2, dst, hashlib.sha256)
    return tuple(b"".join(encode_fp(c) for c in u.coeffs) for u in (u0, u1))


def add_g1(a: bytes, b: bytes) -> bytes:
    """Return the sum of two 128-byte G1 points."""
    return encode_g1_point(add(decode_g1_point(a), decode_g1_point(b)))
