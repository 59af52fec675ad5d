"""Keccak Merkle trees shared with the contracts.

Rules (the contracts verify the same way):
- a leaf is ``keccak256(keccak256(encoded_leaf))``; hashing twice keeps a 64-byte inner node from
  ever being read as a leaf (second-preimage safety);
- a parent is ``keccak256(min(a, b) || max(a, b))``: pairs are sorted, so a proof is just the
  list of siblings, with no left/right flags;
- a level with an odd count promotes its last node unchanged to the next level;
- the root of no leaves is 32 zero bytes;
- every record starts with its tree's leaf type (``LEAF_TYPE_BILLING``, ``LEAF_TYPE_REWARDS``,
  the same numbers as ``contracts/modules/merkle.vy``), so a leaf of one tree never verifies in
  another, whatever roots the contracts hold.
"""

from dataclasses import dataclass

from offchain.crypto.hashing import keccak

EMPTY_ROOT = b"\x00" * 32

# The type tags of the record kinds (the first ABI word of every encoded record).
LEAF_TYPE_BILLING = 1
LEAF_TYPE_REWARDS = 2


def leaf_hash(encoded_leaf: bytes) -> bytes:
    """Return the tree leaf for an encoded record."""
    return keccak(keccak(encoded_leaf))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """Return the parent of two nodes, independent of their order."""
    return keccak(a + b) if a <= b else keccak(b + a)


@dataclass(frozen=True)
class MerkleTree:
    """All levels of a tree built from leaf hashes; ``levels[0]`` are the leaves."""

    levels: tuple[tuple[bytes, ...], ...]

    @property
    def root(self) -> bytes:
        """Return the root, or ``EMPTY_ROOT`` for a tree of no leaves."""
        return self.levels[-1][0] if self.levels[0] else EMPTY_ROOT

    def proof(self, index: int) -> list[bytes]:
        """Return the sibling hashes from leaf ``index`` up to the root."""
        if not 0 <= index < len(self.levels[0]):
            raise IndexError(f"leaf index {index} out of range")
        siblings = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                siblings.append(level[sibling])
            index //= 2
        return siblings


def build(leaves: list[bytes]) -> MerkleTree:
    """Return the tree over ``leaves`` (already leaf-hashed), in their given order."""
    for leaf in leaves:
        if len(leaf) != 32:
            raise ValueError("each leaf must be a 32-byte hash")
    levels = [tuple(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        parents = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            parents.append(level[-1])
        levels.append(tuple(parents))
    return MerkleTree(levels=tuple(levels))


def compute_root(leaf: bytes, proof: list[bytes]) -> bytes:
    """Return the root that ``proof`` implies for ``leaf``."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node


def verify(root: bytes, leaf: bytes, proof: list[bytes]) -> bool:
    """Check that ``leaf`` is in the tree of ``root`` by ``proof``."""
    return compute_root(leaf, proof) == root
