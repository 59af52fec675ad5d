"""offchain.protocol.rewards: the (account, cumulative earned) leaf encoding, tree and split."""

import pytest
from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from offchain.protocol import merkle
from offchain.protocol.rewards import (
    DEFAULT_ROUTER_SHARE_BPS,
    RewardsError,
    encode_rewards_entry,
    rewards_leaf,
    rewards_tree,
    split_invocation,
)

ALICE = "0x" + "11" * 20
BOB = "0x" + "ab" * 20
CAROL = "0x" + "05" * 20


def test_encode_rewards_entry__abi_type_tag_address_uint256():
    encoded = encode_rewards_entry(ALICE, 12_345)
    assert len(encoded) == 96
    fields = decode(["uint8", "address", "uint256"], encoded)
    assert fields == (merkle.LEAF_TYPE_REWARDS, ALICE, 12_345)


def test_rewards_leaf__double_keccak_of_encoding():
    assert rewards_leaf(BOB, 7) == keccak(keccak(encode_rewards_entry(BOB, 7)))


def test_rewards_leaf__case_of_address__same_leaf():
    assert rewards_leaf(BOB.upper().replace("0X", "0x"), 3) == rewards_leaf(BOB, 3)


@pytest.mark.parametrize("account", ["0x1234", "not an address", 42, None])
def test_encode_rewards_entry__bad_address__raises(account):
    with pytest.raises(RewardsError):
        encode_rewards_entry(account, 1)


@pytest.mark.parametrize("amount", [-1, 2**256, 1.5, True, "3"])
def test_encode_rewards_entry__bad_amount__raises(amount):
    with pytest.raises(RewardsError):
        encode_rewards_entry(ALICE, amount)


def test_rewards_tree__every_proof_verifies_and_total_is_the_sum():
    earned = {ALICE: 10, BOB: 25, CAROL: 0}
    tree = rewards_tree(earned)
    assert tree.total == 35
    assert set(tree.proofs) == {to_checksum_address(a) for a in earned}
    for account, amount in earned.items():
        proof = tree.proofs[to_checksum_address(account)]
        assert merkle.verify(tree.root, rewards_leaf(account, amount), proof)
        assert not merkle.verify(tree.root, rewards_leaf(account, amount + 1), proof)


def test_rewards_tree__leaves_ordered_by_address_regardless_of_input_order():
    one = rewards_tree({ALICE: 1, BOB: 2, CAROL: 3})
    other = rewards_tree({CAROL: 3, BOB: 2, ALICE: 1})
    assert one.root == other.root
    leaves = [rewards_leaf(CAROL, 3), rewards_leaf(ALICE, 1), rewards_leaf(BOB, 2)]
    assert one.root == merkle.build(leaves).root


def test_rewards_tree__single_leaf__root_is_leaf_and_proof_empty():
    tree = rewards_tree({ALICE: 9})
    assert tree.root == rewards_leaf(ALICE, 9)
    assert tree.proofs[to_checksum_address(ALICE)] == []


def test_rewards_tree__empty__empty_root():
    tree = rewards_tree({})
    assert (tree.root, tree.total, tree.proofs) == (merkle.EMPTY_ROOT, 0, {})


def test_rewards_tree__same_account_twice__raises():
    with pytest.raises(RewardsError):
        rewards_tree({BOB.lower(): 1, to_checksum_address(BOB): 2})


def test_split_invocation__default_gives_router_ten_percent():
    assert DEFAULT_ROUTER_SHARE_BPS == 1_000
    assert split_invocation(1_000) == (100, 900)
    assert split_invocation(999) == (99, 900)


def test_split_invocation__bad_share_or_price__raises():
    with pytest.raises(RewardsError):
        split_invocation(100, 10_001)
    with pytest.raises(RewardsError):
        split_invocation(-1)
