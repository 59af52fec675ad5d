"""Billing leaves: the (user, cumulative spent) records under each commit's billing root.

A leaf is ``merkle.leaf_hash(abi_encode(uint8 LEAF_TYPE_BILLING, address user, uint256
cumulative_spent))``, the same
bytes ComputeMarket hashes when a user proves its spending; the tree is built with
``offchain.protocol.merkle``. Every account that has ever deposited into the market escrow has a
leaf in every billing root (zero spent included), so that any of them can prove its spending.
"""

from collections.abc import Mapping

from eth_abi import encode
from eth_utils import is_address, to_checksum_address

from offchain.protocol import merkle

MAX_UINT256 = 2**256 - 1


class BillingError(ValueError):
    """A billing entry that cannot be encoded."""


def encode_billing_entry(user: str, cumulative_spent: int) -> bytes:
    """Return the ABI encoding ``(uint8 type, address, uint256)`` of one billing entry."""
    if not isinstance(user, str) or not is_address(user):
        raise BillingError(f"not an address: {user!r}")
    if not isinstance(cumulative_spent, int) or not 0 <= cumulative_spent <= MAX_UINT256:
        raise BillingError(f"cumulative spent out of uint256 range: {cumulative_spent!r}")
    return encode(
        ["uint8", "address", "uint256"],
        [merkle.LEAF_TYPE_BILLING, to_checksum_address(user), cumulative_spent],
    )


def billing_leaf(user: str, cumulative_spent: int) -> bytes:
    """Return the Merkle leaf of ``user`` having spent ``cumulative_spent`` so far."""
    return merkle.leaf_hash(encode_billing_entry(user, cumulative_spent))


def build_billing_tree(spent: Mapping[str, int]) -> tuple[merkle.MerkleTree, list[str]]:
    """Return the billing tree over ``spent`` and its users in leaf order (by address value)."""
    users = sorted((to_checksum_address(user) for user in spent), key=str.lower)
    if len(set(users)) != len(users):
        raise BillingError("a user appears twice")
    by_user = {to_checksum_address(user): amount for user, amount in spent.items()}
    leaves = [billing_leaf(user, by_user[user]) for user in users]
    return merkle.build(leaves), users


def billing_proof(spent: Mapping[str, int], user: str) -> tuple[int, list[bytes]]:
    """Return ``user``'s cumulative spent and its proof in the billing tree over ``spent``."""
    tree, users = build_billing_tree(spent)
    wanted = to_checksum_address(user) if is_address(user) else None
    if wanted not in users:
        raise BillingError(f"{user!r} has no leaf in this billing tree")
    index = users.index(wanted)
    by_user = {to_checksum_address(u): amount for u, amount in spent.items()}
    return by_user[wanted], tree.proof(index)


def proof_document(spent: Mapping[str, int], user: str) -> dict:
    """Return the JSON document `ape run withdraw --proof-file` reads for ``user``."""
    cumulative, proof = billing_proof(spent, user)
    return {"cumulative_spent": cumulative, "proof": ["0x" + node.hex() for node in proof]}
