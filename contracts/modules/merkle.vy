# pragma version ~=0.4.3
"""
@title Keccak Merkle Proofs
@custom:contract-name merkle
@license GNU Affero General Public License v3.0 only
@notice Verifies proofs of the trees that `offchain/protocol/merkle.py`
        builds, byte for byte: a leaf is keccak256(keccak256(encoded leaf))
        (the caller hashes it; hashing twice keeps a 64-byte inner node from
        ever passing as a leaf), a parent is keccak256 of its two children
        in ascending order (so a proof is just the siblings, with no
        left/right flags), and a level with an odd count promotes its last
        node unchanged (the proof then simply has no sibling for it).
"""


# @dev The type tag that starts every encoded record, one per tree (the
# same numbers as `offchain/protocol/merkle.py`): a leaf of one tree never
# verifies under another tree's root, whatever roots the contracts hold.
LEAF_TYPE_BILLING: constant(uint8) = 1
LEAF_TYPE_REWARDS: constant(uint8) = 2


# @dev The deepest proof accepted: trees of up to 2**32 leaves.
MAX_PROOF_DEPTH: constant(uint256) = 32


@internal
@pure
def _leaf(encoded_hash: bytes32) -> bytes32:
    """
    @dev The leaf of a record whose encoding hashes to `encoded_hash`.
    @param encoded_hash keccak256 of the record's encoding.
    @return bytes32 keccak256(encoded_hash), the tree leaf.
    """
    return keccak256(encoded_hash)


@internal
@pure
def _hash_pair(a: bytes32, b: bytes32) -> bytes32:
    """
    @dev The parent of two nodes, independent of their order.
    @param a One child.
    @param b The other child.
    @return bytes32 keccak256 of the smaller child, then the larger.
    """
    if convert(a, uint256) <= convert(b, uint256):
        return keccak256(concat(a, b))
    return keccak256(concat(b, a))


@internal
@pure
def _compute_root(leaf: bytes32, proof: DynArray[bytes32, MAX_PROOF_DEPTH]) -> bytes32:
    """
    @dev The root that `proof` implies for `leaf`.
    @param leaf The leaf hash.
    @param proof The sibling hashes from the leaf up.
    @return bytes32 The implied root.
    """
    node: bytes32 = leaf
    for sibling: bytes32 in proof:
        node = self._hash_pair(node, sibling)
    return node


@internal
@pure
def _verify(root: bytes32, leaf: bytes32, proof: DynArray[bytes32, MAX_PROOF_DEPTH]) -> bool:
    """
    @dev Whether `leaf` is in the tree of `root` by `proof`.
    @param root The tree's root.
    @param leaf The leaf hash.
    @param proof The sibling hashes from the leaf up.
    @return bool True when the proof holds.
    """
    return self._compute_root(leaf, proof) == root
