"""The on-chain BLS12-381 module against py-ecc, byte for byte."""

import os
import random

import pytest

from offchain.crypto import bls

ACCOUNT = "0x" + "11" * 20
RANDOM_MESSAGES = [os.urandom(random.Random(i).randint(0, 64)) for i in range(24)]


@pytest.mark.parametrize("message", [b"", b"abc", b"\x00" * 64] + RANDOM_MESSAGES)
def test_hash_to_g2__signature_domain__matches_py_ecc(bls_harness, message):
    assert bls_harness.hash_to_g2(message, False) == bls.hash_to_g2_eip2537(
        message, bls.SIGNATURE_DST
    )


@pytest.mark.parametrize("message", [b"", b"abc"] + RANDOM_MESSAGES)
def test_hash_to_g2__pop_domain__matches_py_ecc(bls_harness, message):
    assert bls_harness.hash_to_g2(message, True) == bls.hash_to_g2_eip2537(message, bls.POP_DST)


def _off_subgroup_g1_point() -> bytes:
    """A point on y^2 = x^3 + 4 over Fp that is not in the order-r subgroup."""
    from py_ecc.fields import optimized_bls12_381_FQ as FQ
    from py_ecc.optimized_bls12_381 import curve_order, field_modulus, is_inf, multiply

    x = 1
    while True:
        rhs = (x**3 + 4) % field_modulus
        y = pow(rhs, (field_modulus + 1) // 4, field_modulus)
        if y * y % field_modulus == rhs:
            point = (FQ(x), FQ(y), FQ.one())
            if not is_inf(multiply(point, curve_order)):
                return bls.encode_g1_point(point)
        x += 1


@pytest.fixture(scope="module")
def signer():
    secret = bls.keygen(b"module-signer")
    return secret, bls.public_key(secret)


def test_compress_g1__matches_py_ecc(bls_harness):
    for i in range(8):
        pubkey = bls.public_key(bls.keygen(bytes([i])))
        assert bls_harness.compress_g1(bls.pubkey_to_eip2537(pubkey)) == pubkey


def test_verify_signature__valid__true(bls_harness, signer):
    secret, pubkey = signer
    message = os.urandom(32)
    signature = bls.sign(secret, message)
    assert bls_harness.verify_signature(
        bls.pubkey_to_eip2537(pubkey), message, bls.signature_to_eip2537(signature)
    )


def test_verify_signature__other_message__false(bls_harness, signer):
    secret, pubkey = signer
    signature = bls.sign(secret, b"one")
    assert not bls_harness.verify_signature(
        bls.pubkey_to_eip2537(pubkey), b"two", bls.signature_to_eip2537(signature)
    )


def test_verify_signature__aggregate__true(bls_harness):
    secrets = [bls.keygen(bytes([i, 1])) for i in range(5)]
    message = os.urandom(32)
    aggregate_signature = bls.aggregate_signatures([bls.sign(s, message) for s in secrets])
    aggregate_key = bls.aggregate_public_keys([bls.public_key(s) for s in secrets])
    assert bls_harness.verify_signature(
        bls.pubkey_to_eip2537(aggregate_key), message, bls.signature_to_eip2537(aggregate_signature)
    )


def test_verify_signature__signature_not_on_curve__false(bls_harness, signer):
    _, pubkey = signer
    garbage = b"".join(bls.encode_fp(v) for v in (1, 2, 3, 4))
    assert not bls_harness.verify_signature(bls.pubkey_to_eip2537(pubkey), b"m", garbage)


def test_verify_possession__own_proof__true(bls_harness, signer):
    secret, pubkey = signer
    proof = bls.prove_possession(secret, ACCOUNT)
    assert bls_harness.verify_possession(
        bls.pubkey_to_eip2537(pubkey), bls.signature_to_eip2537(proof), ACCOUNT
    )


def test_verify_possession__proof_for_another_account__false(bls_harness, signer):
    secret, pubkey = signer
    proof = bls.prove_possession(secret, ACCOUNT)
    assert not bls_harness.verify_possession(
        bls.pubkey_to_eip2537(pubkey), bls.signature_to_eip2537(proof), "0x" + "22" * 20
    )


def test_verify_possession__proof_by_other_key__false(bls_harness, signer):
    _, pubkey = signer
    other_proof = bls.prove_possession(bls.keygen(b"someone else"), ACCOUNT)
    assert not bls_harness.verify_possession(
        bls.pubkey_to_eip2537(pubkey), bls.signature_to_eip2537(other_proof), ACCOUNT
    )


def test_verify_possession__signature_domain_instead_of_pop__false(bls_harness, signer):
    secret, pubkey = signer
    wrong_domain = bls.sign(secret, bls.possession_message(pubkey, ACCOUNT))
    assert not bls_harness.verify_possession(
        bls.pubkey_to_eip2537(pubkey), bls.signature_to_eip2537(wrong_domain), ACCOUNT
    )


def test_is_valid_public_key__real_key__true(bls_harness, signer):
    assert bls_harness.is_valid_public_key(bls.pubkey_to_eip2537(signer[1]))


def test_is_valid_public_key__infinity__false(bls_harness):
    assert not bls_harness.is_valid_public_key(b"\x00" * 128)


def test_is_valid_public_key__not_on_curve__false(bls_harness):
    assert not bls_harness.is_valid_public_key(bls.encode_fp(1) + bls.encode_fp(1))


def test_is_valid_public_key__not_in_subgroup__false(bls_harness):
    assert not bls_harness.is_valid_public_key(_off_subgroup_g1_point())


def test_add_g1__matches_py_ecc(bls_harness):
    a = bls.pubkey_to_eip2537(bls.public_key(bls.keygen(b"a")))
    b = bls.pubkey_to_eip2537(bls.public_key(bls.keygen(b"b")))
    assert bls_harness.add_g1(a, b) == bls.add_g1(a, b)
