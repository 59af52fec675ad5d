from eth_hash.backends import pycryptodome
from eth_hash.main import Keccak256
from hypothesis import given
from hypothesis import strategies as st

from offchain.crypto.hashing import keccak

reference = Keccak256(pycryptodome)


def test_known_digests():
    assert keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak(b"abc").hex() == (
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    )


def test_fast_backend_in_use():
    assert keccak._backend.__name__.endswith("pysha3")


@given(st.binary(max_size=4_096))
def test_same_digest_as_pycryptodome(data):
    assert keccak(data) == reference(data)
    assert keccak(bytearray(data)) == reference(data)
