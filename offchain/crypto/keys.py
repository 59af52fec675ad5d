"""secp256k1 identities: the key an agent signs with and the Ethereum address it stakes from."""

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache

from eth_keys import keys as eth_keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import to_checksum_address

from offchain.crypto.hashing import keccak

try:
    # libsecp256k1 directly, with the key object kept: eth-keys derives the public key again on
    # every signature, which is most of the cost of signing (two key derivations per call).
    from coincurve import PrivateKey as _SigningKey
except ImportError:  # coincurve comes with libp2p; without it, eth-keys' slower path
    _SigningKey = None


class InvalidSignature(ValueError):
    """A signature that is malformed or does not recover to an address."""


@dataclass(frozen=True)
class Keypair:
    """A secp256k1 private key with its Ethereum address."""

    private_key: bytes
    address: str

    def sign_hash(self, digest: bytes) -> bytes:
        """Return the 65-byte (r || s || v, v in {27, 28}) signature of a 32-byte digest."""
        return sign_hash(self.private_key, digest)


def keypair_from_private_key(private_key: bytes) -> Keypair:
    """Return the keypair of a 32-byte private key."""
    key = eth_keys.PrivateKey(private_key)
    return Keypair(private_key=bytes(private_key), address=key.public_key.to_checksum_address())


def generate_keypair(seed: bytes | None = None) -> Keypair:
    """Return a fresh keypair, or the one derived deterministically from ``seed``."""
    if seed is None:
        return keypair_from_private_key(os.urandom(32))
    # Hashing the seed with a counter keeps deterministic keys for tests and simulations
    # inside the valid scalar range.
    counter = 0
    while True:
        candidate = hashlib.sha256(b"emc-secp256k1" + seed + counter.to_bytes(4, "big")).digest()
        try:
            return keypair_from_private_key(candidate)
        except ValidationError:
            counter += 1


def sign_hash(private_key: bytes, digest: bytes) -> bytes:
    """Return the 65-byte Ethereum-style signature of a 32-byte digest."""
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    if _SigningKey is not None:
        # RFC 6979 nonces and low-s normalisation, as eth-keys: the same signature, byte for byte.
        signature = _signing_key(bytes(private_key)).sign_recoverable(digest, hasher=None)
        return signature[:64] + bytes((signature[64] + 27,))
    sig = eth_keys.PrivateKey(private_key).sign_msg_hash(digest)
    return sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.v + 27])


@lru_cache(maxsize=64)
def _signing_key(private_key: bytes):  # type: ignore[no-untyped-def]
    """Return the libsecp256k1 key object of ``private_key`` (an agent signs with a few)."""
    return _SigningKey(private_key)


def recover_address(digest: bytes, signature: bytes) -> str:
    """Return the checksummed address that signed ``digest``, or raise ``InvalidSignature``."""
    if len(digest) != 32:
        raise InvalidSignature("digest must be 32 bytes")
    if len(signature) != 65:
        raise InvalidSignature(f"signature must be 65 bytes, got {len(signature)}")
    v = signature[64]
    if v not in (27, 28):
        raise InvalidSignature(f"bad recovery id {v}")
    try:
        sig = eth_keys.Signature(signature[:64] + bytes([v - 27]))
        public_key = sig.recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValidationError) as exc:
        raise InvalidSignature(str(exc)) from exc
    return to_checksum_address(public_key.to_canonical_address())


def address_of_public_key(public_key: bytes) -> str:
    """Return the address of a 64-byte uncompressed public key."""
    return to_checksum_address(keccak(public_key)[-20:])
