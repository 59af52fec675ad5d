"""Commit seal schemes: real BLS (what the contract checks) and the keyed-hash stand-in."""

import pytest

from offchain.crypto import bls
from offchain.validators.seals import BlsSeal, HashSeal, seal_scheme

DIGEST = b"\x42" * 32


def test_bls_seal__verifies_only_its_key_and_digest_and_aggregates():
    scheme = BlsSeal()
    (sk1, pk1), (sk2, pk2) = scheme.keygen(b"a"), scheme.keygen(b"b")
    s1, s2 = scheme.sign(sk1, DIGEST), scheme.sign(sk2, DIGEST)
    assert scheme.verify(pk1, DIGEST, s1)
    assert not scheme.verify(pk2, DIGEST, s1)
    assert not scheme.verify(pk1, b"\x43" * 32, s1)
    assert not scheme.verify(pk1, DIGEST, b"\x00" * 96)  # not a point: False, not a crash
    assert bls.verify_aggregate([pk1, pk2], DIGEST, bls.aggregate_signatures([s1, s2]))


def test_bls_seal__verify_many_checks_all_at_once_and_fails_on_one_bad_seal():
    scheme = BlsSeal()
    (sk1, pk1), (sk2, pk2) = scheme.keygen(b"a"), scheme.keygen(b"b")
    s1, s2 = scheme.sign(sk1, DIGEST), scheme.sign(sk2, DIGEST)
    assert scheme.verify_many((pk1, pk2), DIGEST, (s1, s2))
    assert not scheme.verify_many((pk1, pk2), DIGEST, (s1, s1))
    assert not scheme.verify_many((pk1, pk2), DIGEST, (s1, b"\x00" * 96))
    assert not scheme.verify_many((pk1,), DIGEST, (s1, s2))
    assert not scheme.verify_many((), DIGEST, ())


def test_hash_seal__verifies_only_its_key_and_digest():
    scheme = HashSeal()
    (k1, p1), (_, p2) = scheme.keygen(b"a"), scheme.keygen(b"b")
    seal = scheme.sign(k1, DIGEST)
    assert scheme.verify(p1, DIGEST, seal)
    assert not scheme.verify(p2, DIGEST, seal)
    assert not scheme.verify(p1, b"\x43" * 32, seal)
    assert scheme.verify_many((p1,), DIGEST, (seal,))
    assert not scheme.verify_many((p1, p2), DIGEST, (seal, seal))


def test_seal_scheme__by_name():
    assert seal_scheme("bls").name == "bls" and seal_scheme("hash").name == "hash"
    with pytest.raises(ValueError, match="unknown seal scheme"):
        seal_scheme("rsa")
