"""Rewards leaves: the (account, cumulative earned) records under each commit's rewards root.

A leaf is ``merkle.leaf_hash(abi_encode(uint8 LEAF_TYPE_REWARDS, address account, uint256
cumulative_earned))``, the same
bytes GPUComputeReward hashes in ``claim``; the tree is built with ``offchain.protocol.merkle``,
its leaves ordered by account address. A root's ``rewards_total`` is the sum of its leaves.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from eth_abi import encode
from eth_utils import is_address, to_checksum_address

from offchain.protocol import merkle

MAX_UINT256 = 2**256 - 1

# Basis points, and the router's default share of each invocation's price (GPUComputeReward).
BPS = 10_000
DEFAULT_ROUTER_SHARE_BPS = 1_000


class RewardsError(ValueError):
    """A rewards entry that cannot be encoded."""


@dataclass(frozen=True)
class RewardsTree:
    """A rewards tree: its root, the sum of its leaves, and each account's amount and proof."""

    root: bytes
    total: int
    cumulative: dict[str, int]
    proofs: dict[str, list[bytes]]


def encode_rewards_entry(account: str, cumulative: int) -> bytes:
    """Return the ABI encoding ``(uint8 type, address, uint256)`` of one rewards entry."""
    if not isinstance(account, str) or not is_address(account):
        raise RewardsError(f"not an address: {account!r}")
    if isinstance(cumulative, bool) or not isinstance(cumulative, int):
        raise RewardsError(f"cumulative earned is not an integer: {cumulative!r}")
    if not 0 <= cumulative <= MAX_UINT256:
        raise RewardsError(f"cumulative earned out of uint256 range: {cumulative!r}")
    return encode(
        ["uint8", "address", "uint256"],
        [merkle.LEAF_TYPE_REWARDS, to_checksum_address(account), cumulative],
    )


def rewards_leaf(account: str, cumulative: int) -> bytes:
    """Return the Merkle leaf of ``account`` having earned ``cumulative`` so far."""
    return merkle.leaf_hash(encode_rewards_entry(account, cumulative))


def rewards_tree(earned: Mapping[str, int]) -> RewardsTree:
    """Return the rewards tree over ``earned`` (account -> cumulative), leaves by address."""
    by_account: dict[str, int] = {}
    for account, amount in earned.items():
        encode_rewards_entry(account, amount)
        key = to_checksum_address(account)
        if key in by_account:
            raise RewardsError(f"{key} appears twice")
        by_account[key] = amount
    accounts = sorted(by_account, key=lambda a: int(a, 16))
    tree = merkle.build([rewards_leaf(a, by_account[a]) for a in accounts])
    total = sum(by_account.values())
    if total > MAX_UINT256:
        raise RewardsError("rewards total exceeds uint256")
    return RewardsTree(
        root=tree.root,
        total=total,
        cumulative=by_account,
        proofs={a: tree.proof(i) for i, a in enumerate(accounts)},
    )


def split_invocation(
    price: int, router_share_bps: int = DEFAULT_ROUTER_SHARE_BPS
) -> tuple[int, int]:
    """Return the (router, node owner) shares of one invocation's ``price``."""
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise RewardsError(f"price must be a non-negative integer: {price!r}")
    if isinstance(router_share_bps, bool) or not isinstance(router_share_bps, int):
        raise RewardsError(f"router share is not an integer: {router_share_bps!r}")
    if not 0 <= router_share_bps <= BPS:
        raise RewardsError(f"router share out of [0, {BPS}] bps: {router_share_bps}")
    router = price * router_share_bps // BPS
    return router, price - router
