"""BLS over py-ecc and the EIP-2537 encodings (the on-chain checks are in tests/contracts/bls)."""

import pytest

from offchain.crypto import bls


def test_sign_verify_aggregate__round_trip():
    secrets = [bls.keygen(bytes([i])) for i in range(3)]
    keys = [bls.public_key(s) for s in secrets]
    signatures = [bls.sign(s, b"m") for s in secrets]
    assert all(bls.verify(k, b"m", sig) for k, sig in zip(keys, signatures, strict=True))
    aggregate = bls.aggregate_signatures(signatures)
    assert bls.verify_aggregate(keys, b"m", aggregate)
    assert not bls.verify_aggregate(keys[:2], b"m", aggregate)
    assert bls.verify(bls.aggregate_public_keys(keys), b"m", aggregate)


def test_proof_of_possession__own_key_only():
    secret, other = bls.keygen(b"a"), bls.keygen(b"b")
    account, elsewhere = "0x" + "11" * 20, "0x" + "22" * 20
    proof = bls.prove_possession(secret, account)
    assert bls.verify_possession(bls.public_key(secret), proof, account)
    assert not bls.verify_possession(bls.public_key(secret), proof, elsewhere)
    assert not bls.verify_possession(
        bls.public_key(secret), bls.prove_possession(other, account), account
    )


def test_keygen__deterministic_from_seed():
    assert bls.keygen(b"seed") == bls.keygen(b"seed") != bls.keygen(b"other")


def test_eip2537_encodings__round_trip_and_layout():
    secret = bls.keygen(b"enc")
    key, signature = bls.public_key(secret), bls.sign(secret, b"x")
    g1, g2 = bls.pubkey_to_eip2537(key), bls.signature_to_eip2537(signature)
    assert len(g1) == 128 and len(g2) == 256
    assert all(g1[i : i + 16] == bytes(16) for i in (0, 64))
    assert bls.eip2537_to_pubkey(g1) == key
    assert bls.eip2537_to_signature(g2) == signature


def test_decode_fp__padding_and_range_enforced():
    with pytest.raises(bls.InvalidPoint):
        bls.decode_fp(b"\x01" + bytes(63))
    with pytest.raises(bls.InvalidPoint):
        bls.decode_fp(bytes(16) + bls.FIELD_MODULUS.to_bytes(48, "big"))
    with pytest.raises(bls.InvalidPoint):
        bls.decode_g1_point(bytes(127))


def test_aggregate__nothing__raises():
    with pytest.raises(ValueError):
        bls.aggregate_signatures([])
