# pragma version ~=0.4.3
"""
@title Merkle Module Test Harness
@license GNU Affero General Public License v3.0 only
@notice Exposes the `merkle` module's internal functions, and the billing
        leaf encoding ComputeMarket uses, so tests can compare them with
        `offchain/protocol`. Never deployed outside tests.
"""

from ..modules import merkle


@external
@pure
def verify(root: bytes32, leaf: bytes32, proof: DynArray[bytes32, merkle.MAX_PROOF_DEPTH]) -> bool:
    """
    @notice Whether `leaf` is in the tree of `root` by `proof`.
    """
    return merkle._verify(root, leaf, proof)


@external
@pure
def compute_root(leaf: bytes32, proof: DynArray[bytes32, merkle.MAX_PROOF_DEPTH]) -> bytes32:
    """
    @notice The root that `proof` implies for `leaf`.
    """
    return merkle._compute_root(leaf, proof)


@external
@pure
def billing_leaf(user: address, cumulative_spent: uint256) -> bytes32:
    """
    @notice The billing leaf of (`user`, `cumulative_spent`), as ComputeMarket hashes it.
    """
    return merkle._leaf(keccak256(abi_encode(merkle.LEAF_TYPE_BILLING, user, cumulative_spent)))
