"""secp256k1 identities: signing, recovery, and refusal of malformed signatures."""

import pytest

from offchain.crypto.keys import InvalidSignature, generate_keypair, recover_address

DIGEST = bytes(range(32))


def test_sign_and_recover__round_trip():
    keypair = generate_keypair(b"agent")
    assert recover_address(DIGEST, keypair.sign_hash(DIGEST)) == keypair.address
    assert generate_keypair(b"agent") == keypair


def test_recover__other_digest__other_address():
    keypair = generate_keypair(b"agent")
    assert recover_address(bytes(32), keypair.sign_hash(DIGEST)) != keypair.address


@pytest.mark.parametrize(
    "signature",
    [b"", bytes(64), bytes(64) + b"\x1b", bytes(65), b"\xff" * 64 + b"\x1c", bytes(64) + b"\x05"],
)
def test_recover__malformed__raises(signature):
    with pytest.raises(InvalidSignature):
        recover_address(DIGEST, signature)


def test_sign_hash__digest_must_be_32_bytes():
    with pytest.raises(ValueError):
        generate_keypair(b"a").sign_hash(b"short")
