"""offchain.protocol.billing: the (user, cumulative spent) leaf encoding and tree."""

import pytest
from eth_abi import decode
from eth_utils import keccak

from offchain.protocol import merkle
from offchain.protocol.billing import (
    BillingError,
    billing_leaf,
    billing_proof,
    build_billing_tree,
    encode_billing_entry,
    proof_document,
)

ALICE = "0x" + "11" * 20
BOB = "0x" + "ab" * 20


def test_encode_billing_entry__abi_type_tag_address_uint256():
    encoded = encode_billing_entry(ALICE, 12_345)
    assert len(encoded) == 96
    fields = decode(["uint8", "address", "uint256"], encoded)
    assert fields == (merkle.LEAF_TYPE_BILLING, ALICE, 12_345)


def test_billing_leaf__double_keccak_of_encoding():
    assert billing_leaf(BOB, 7) == keccak(keccak(encode_billing_entry(BOB, 7)))


def test_billing_leaf__case_of_address__same_leaf():
    assert billing_leaf(BOB.upper().replace("0X", "0x"), 3) == billing_leaf(BOB, 3)


@pytest.mark.parametrize("user", ["0x1234", "not an address", 42, None])
def test_encode_billing_entry__bad_address__raises(user):
    with pytest.raises(BillingError):
        encode_billing_entry(user, 1)


@pytest.mark.parametrize("spent", [-1, 2**256, 1.5, "3"])
def test_encode_billing_entry__spent_out_of_range__raises(spent):
    with pytest.raises(BillingError):
        encode_billing_entry(ALICE, spent)


def test_build_billing_tree__every_user_proves_its_entry():
    spent = {BOB: 5, ALICE: 0, "0x" + "22" * 20: 9}
    tree, users = build_billing_tree(spent)
    assert [u.lower() for u in users] == sorted(u.lower() for u in spent)
    for index, user in enumerate(users):
        assert merkle.verify(tree.root, billing_leaf(user, spent[user.lower()]), tree.proof(index))
        assert not merkle.verify(
            tree.root, billing_leaf(user, spent[user.lower()] + 1), tree.proof(index)
        )


def test_build_billing_tree__same_user_twice__raises():
    with pytest.raises(BillingError):
        build_billing_tree({BOB: 1, BOB.upper().replace("0X", "0x"): 2})


def test_build_billing_tree__empty__empty_root():
    tree, users = build_billing_tree({})
    assert (tree.root, users) == (merkle.EMPTY_ROOT, [])


def test_billing_proof__member__verifies_against_root():
    spent = {ALICE: 4, BOB: 6}
    tree, _ = build_billing_tree(spent)
    cumulative, proof = billing_proof(spent, BOB.upper().replace("0X", "0x"))
    assert cumulative == 6
    assert merkle.verify(tree.root, billing_leaf(BOB, 6), proof)


def test_billing_proof__not_in_tree__raises():
    with pytest.raises(BillingError):
        billing_proof({ALICE: 1}, BOB)
    with pytest.raises(BillingError):
        billing_proof({ALICE: 1}, "nobody")


def test_proof_document__hex_siblings_and_amount():
    spent = {ALICE: 4, BOB: 6, "0x" + "33" * 20: 0}
    document = proof_document(spent, ALICE)
    _, proof = billing_proof(spent, ALICE)
    assert document == {"cumulative_spent": 4, "proof": ["0x" + p.hex() for p in proof]}


def test_billing_leaf__replayed_as_a_rewards_leaf__differs():
    # The same (account, amount) in the two trees: the type tag keeps a billing leaf from ever
    # proving a rewards claim (or the reverse), whatever roots the contracts hold.
    from offchain.protocol.rewards import rewards_leaf

    assert billing_leaf(ALICE, 12_345) != rewards_leaf(ALICE, 12_345)
    assert merkle.LEAF_TYPE_BILLING != merkle.LEAF_TYPE_REWARDS
