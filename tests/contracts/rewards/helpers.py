"""Constants and helpers shared by the reward contract tests."""

from functools import cache

from offchain.crypto import bls
from offchain.protocol.rewards import rewards_tree

EMC = 10**18
EMISSION_PER_COMMIT = 10 * EMC
REWARD_PER_COMMIT = 3 * EMC


def tree_of(earned: dict[str, int]):
    """Return the rewards tree over (account, cumulative earned) pairs."""
    return rewards_tree({str(account): amount for account, amount in earned.items()})


def proof_of(tree, account) -> list[bytes]:
    """Return ``account``'s proof in ``tree``."""
    return tree.proofs[str(account)]


@cache
def bls_key(seed: int) -> bytes:
    """Return a real BLS12-381 public key (EIP-2537 G1), one per seed."""
    secret = bls.keygen(seed.to_bytes(32, "big"))
    return bls.pubkey_to_eip2537(bls.public_key(secret))


@cache
def aggregate_key(seeds: tuple[int, ...]) -> bytes:
    """Return the aggregate G1 key of the seeds' keys (EIP-2537)."""
    total = bls_key(seeds[0])
    for seed in seeds[1:]:
        total = bls.add_g1(total, bls_key(seed))
    return total


def set_data(harness, members: list[tuple[str, int]], seed_base: int = 1) -> bytes:
    """Return validator-set data for (address, power) members, laid out by `validator_set`."""
    seeds = tuple(seed_base + i for i in range(len(members)))
    total = sum(power for _, power in members)
    data = aggregate_key(seeds) + total.to_bytes(32, "big") + len(members).to_bytes(32, "big")
    for seed, (member, power) in zip(seeds, members, strict=True):
        data += bytes(harness.entry(bls_key(seed), power, member))
    return data


def bitmap_of(indices) -> int:
    """Return the signer bitmap with the given member indices set."""
    bitmap = 0
    for index in indices:
        bitmap |= 1 << index
    return bitmap
