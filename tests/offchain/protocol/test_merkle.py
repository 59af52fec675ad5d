"""Keccak Merkle trees: proofs for every leaf at every size, and what they reject."""

import pytest

from offchain.protocol import merkle


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 33])
def test_proof__every_leaf_verifies(n):
    tree = merkle.build(leaves(n))
    for index, leaf in enumerate(leaves(n)):
        assert merkle.verify(tree.root, leaf, tree.proof(index))


def test_verify__wrong_leaf_or_tampered_proof__rejected():
    tree = merkle.build(leaves(6))
    proof = tree.proof(2)
    assert not merkle.verify(tree.root, leaves(7)[6], proof)
    tampered = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    assert not merkle.verify(tree.root, leaves(6)[2], tampered)


def test_build__empty_and_single():
    assert merkle.build([]).root == merkle.EMPTY_ROOT
    only = leaves(1)[0]
    assert merkle.build([only]).root == only


def test_hash_pair__order_independent_and_leaf_hash_is_double_keccak():
    a, b = leaves(2)
    assert merkle.hash_pair(a, b) == merkle.hash_pair(b, a)
    # A 64-byte inner node never equals a leaf of the same bytes.
    assert merkle.leaf_hash(a + b) != merkle.hash_pair(a, b)


def test_build_and_proof__bad_input_raises():
    with pytest.raises(ValueError, match="32-byte"):
        merkle.build([b"short"])
    with pytest.raises(IndexError):
        merkle.build(leaves(3)).proof(3)
