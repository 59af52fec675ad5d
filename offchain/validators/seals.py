"""Commit seals: the signature each COMMIT carries over the commit digest.

``BlsSeal`` is the real one (BLS12-381, what the contract aggregates and checks). py-ecc takes
hundreds of milliseconds per operation, so the simulator can swap in ``HashSeal``, a keyed hash
with the same interface that is fast and deterministic but is NOT a signature: its "public key"
is the secret itself. It exists only so large simulations and property tests run quickly; the
state machine treats both alike (docs/consensus.md).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from offchain.crypto import bls

VERIFY_CACHE = 1 << 14


class SealScheme(Protocol):
    """What the state machine needs from a seal scheme."""

    name: str

    def keygen(self, seed: bytes) -> tuple[object, bytes]:
        """Return (secret, public key) derived from ``seed``."""

    def sign(self, secret: object, digest: bytes) -> bytes:
        """Return the seal of ``digest``."""

    def verify(self, public: bytes, digest: bytes, seal: bytes) -> bool:
        """Check a seal."""

    def verify_many(
        self, publics: tuple[bytes, ...], digest: bytes, seals: tuple[bytes, ...]
    ) -> bool:
        """Check that every seal is valid for its key (all at once where the scheme can)."""


@functools.lru_cache(maxsize=VERIFY_CACHE)
def _bls_verify_aggregate(
    publics: tuple[bytes, ...], digest: bytes, seals: tuple[bytes, ...]
) -> bool:
    """Check seals on one digest through their aggregate (cached: a pure function)."""
    try:
        return bls.verify_aggregate(list(publics), digest, bls.aggregate_signatures(list(seals)))
    except (ValueError, TypeError, AssertionError):
        return False


@functools.lru_cache(maxsize=VERIFY_CACHE)
def _bls_verify(public: bytes, digest: bytes, seal: bytes) -> bool:
    """Check one BLS seal (cached: a pure function of its inputs)."""
    try:
        return bls.verify(public, digest, seal)
    except (ValueError, TypeError, AssertionError):
        return False


@dataclass(frozen=True)
class BlsSeal:
    """BLS12-381 seals (py-ecc, proof-of-possession ciphersuite)."""

    name: str = "bls"

    def keygen(self, seed: bytes) -> tuple[object, bytes]:
        """Return (secret key, 48-byte public key) derived from ``seed``."""
        secret = bls.keygen(seed)
        return secret, bls.public_key(secret)

    def sign(self, secret: object, digest: bytes) -> bytes:
        """Return the 96-byte BLS signature of ``digest``."""
        return bls.sign(secret, digest)

    def verify(self, public: bytes, digest: bytes, seal: bytes) -> bool:
        """Check a BLS seal."""
        return _bls_verify(public, digest, seal)

    def verify_many(
        self, publics: tuple[bytes, ...], digest: bytes, seals: tuple[bytes, ...]
    ) -> bool:
        """Check seals on one digest with one aggregate verification (one pairing check).

        Safe against rogue keys because every validator key has proven possession on-chain.
        """
        if len(publics) != len(seals) or not seals:
            return False
        if len(seals) == 1:
            return _bls_verify(publics[0], digest, seals[0])
        return _bls_verify_aggregate(tuple(publics), digest, tuple(seals))


@dataclass(frozen=True)
class HashSeal:
    """A keyed-hash stand-in for BLS seals, for simulations only: anyone with the key can forge."""

    name: str = "hash"

    def keygen(self, seed: bytes) -> tuple[object, bytes]:
        """Return (key, key): the verifier needs the key itself."""
        key = hashlib.sha256(b"emc-hash-seal" + seed).digest()
        return key, key

    def sign(self, secret: object, digest: bytes) -> bytes:
        """Return HMAC-SHA256(key, digest)."""
        return hmac.new(secret, digest, hashlib.sha256).digest()

    def verify(self, public: bytes, digest: bytes, seal: bytes) -> bool:
        """Check the HMAC."""
        return hmac.compare_digest(hmac.new(public, digest, hashlib.sha256).digest(), seal)

    def verify_many(
        self, publics: tuple[bytes, ...], digest: bytes, seals: tuple[bytes, ...]
    ) -> bool:
        """Check each HMAC."""
        if len(publics) != len(seals) or not seals:
            return False
        return all(self.verify(p, digest, s) for p, s in zip(publics, seals, strict=True))


def seal_scheme(name: str) -> SealScheme:
    """Return the seal scheme called ``name`` ("bls" or "hash")."""
    schemes: dict[str, SealScheme] = {"bls": BlsSeal(), "hash": HashSeal()}
    if name not in schemes:
        raise ValueError(f"unknown seal scheme {name!r}; expected one of {sorted(schemes)}")
    return schemes[name]
