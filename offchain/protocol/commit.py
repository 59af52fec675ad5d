"""The consensus commit: its EIP-712 digest, the registry-update encoding and the quorum rule.

The digest is what every validator seals with BLS and what ComputeConsensus recomputes on-chain.
It is bound to the chain id and the contract address (the EIP-712 domain) and covers the height,
every root and the previous height's signer bitmap (which the previous height's consensus reward
is booked for), but never the IBFT round: an honest validator then never seals two different
digests at one height, so two digests for one height under one key are punishable evidence.
"""

from dataclasses import dataclass

from eth_abi import encode

from offchain.crypto.hashing import keccak

DOMAIN_NAME = "EMC Compute Consensus"
DOMAIN_VERSION = "1"
DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
COMMIT_TYPE = (
    b"Commit(uint256 height,bytes32 batch_root,bytes32 billing_root,bytes32 rewards_root,"
    b"uint256 rewards_total,bytes32 registry_hash,uint256 billed_total,uint256 parent_signers)"
)
REGISTRY_UPDATE_ABI = "(address,uint256,uint256,bool)[]"


@dataclass(frozen=True)
class RegistryUpdate:
    """A consensus-measured change to one node's registry entry."""

    node: str
    e_power: int
    reputation: int
    blacklisted: bool

    def as_tuple(self) -> tuple:
        """Return the ABI tuple (address, uint256, uint256, bool)."""
        return (self.node, self.e_power, self.reputation, self.blacklisted)


@dataclass(frozen=True)
class Commit:
    """What one consensus commit settles (the fields its digest covers)."""

    height: int
    batch_root: bytes
    billing_root: bytes
    rewards_root: bytes
    rewards_total: int
    registry_updates: tuple[RegistryUpdate, ...] = ()
    billed_total: int = 0
    # The signers of height - 1 as this commit's quorum saw them (bit i: member i of that
    # height's set); sealed, so the previous height's consensus reward goes to them whoever
    # submits. 0 at height 1.
    parent_signers: int = 0


def registry_hash(updates: tuple[RegistryUpdate, ...] | list[RegistryUpdate]) -> bytes:
    """Return keccak256 of the ABI-encoded registry updates, as the contract computes it."""
    return keccak(encode([REGISTRY_UPDATE_ABI], [[u.as_tuple() for u in updates]]))


def domain_separator(chain_id: int, contract: str) -> bytes:
    """Return the EIP-712 domain separator of the consensus contract on ``chain_id``."""
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(DOMAIN_TYPE),
                keccak(DOMAIN_NAME.encode()),
                keccak(DOMAIN_VERSION.encode()),
                chain_id,
                contract,
            ],
        )
    )


def struct_hash(commit: Commit) -> bytes:
    """Return the EIP-712 struct hash of ``commit``."""
    return keccak(
        encode(
            [
                "bytes32",
                "uint256",
                "bytes32",
                "bytes32",
                "bytes32",
                "uint256",
                "bytes32",
                "uint256",
                "uint256",
            ],
            [
                keccak(COMMIT_TYPE),
                commit.height,
                commit.batch_root,
                commit.billing_root,
                commit.rewards_root,
                commit.rewards_total,
                registry_hash(commit.registry_updates),
                commit.billed_total,
                commit.parent_signers,
            ],
        )
    )


def commit_digest(commit: Commit, chain_id: int, contract: str) -> bytes:
    """Return the 32-byte digest validators seal for ``commit``."""
    return keccak(b"\x19\x01" + domain_separator(chain_id, contract) + struct_hash(commit))


def signers_bitmap(indices: list[int] | set[int]) -> int:
    """Return the bitmap with bit ``i`` set for each signer index ``i``."""
    bitmap = 0
    for index in indices:
        if index < 0:
            raise ValueError("signer index must be non-negative")
        bitmap |= 1 << index
    return bitmap
