"""The Vyper merkle module against offchain/protocol/merkle.py on random trees."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offchain.protocol import merkle
from offchain.protocol.billing import billing_leaf


@pytest.fixture(scope="module")
def harness(project, deployer):
    return deployer.deploy(project.MerkleHarness)


leaves = st.lists(st.binary(min_size=1, max_size=48), min_size=1, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=leaves, data=st.data())
def test_verify__random_trees__agrees_with_python(harness, records, data):
    tree = merkle.build([merkle.leaf_hash(r) for r in records])
    index = data.draw(st.integers(0, len(records) - 1))
    leaf, proof = tree.levels[0][index], tree.proof(index)
    assert harness.compute_root(leaf, proof) == tree.root
    assert harness.verify(tree.root, leaf, proof) is True
    assert merkle.verify(tree.root, leaf, proof) is True


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=leaves, data=st.data())
def test_verify__tampered_proof_or_leaf__rejected_like_python(harness, records, data):
    tree = merkle.build([merkle.leaf_hash(r) for r in records])
    index = data.draw(st.integers(0, len(records) - 1))
    leaf, proof = tree.levels[0][index], tree.proof(index)
    forged_leaf = merkle.leaf_hash(records[index] + b"\x01")
    assert (
        harness.verify(tree.root, forged_leaf, proof)
        is merkle.verify(tree.root, forged_leaf, proof)
        is False
    )
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[position] = bytes(32 - 1) + b"\x07"
        assert harness.verify(tree.root, leaf, bad) is merkle.verify(tree.root, leaf, bad) is False


def test_verify__inner_node_as_leaf__rejected(harness):
    tree = merkle.build([merkle.leaf_hash(bytes([i])) for i in range(4)])
    inner = tree.levels[1][0]
    assert harness.verify(tree.root, inner, [tree.levels[1][1]]) is True, (
        "a node verifies at its own level"
    )
    assert (
        harness.verify(
            tree.root, merkle.leaf_hash(tree.levels[0][0] + tree.levels[0][1]), [tree.levels[1][1]]
        )
        is False
    )


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(user=st.binary(min_size=20, max_size=20), spent=st.integers(0, 2**256 - 1))
def test_billing_leaf__random_entries__matches_python_encoding(harness, user, spent):
    address = "0x" + user.hex()
    assert harness.billing_leaf(address, spent) == billing_leaf(address, spent)
