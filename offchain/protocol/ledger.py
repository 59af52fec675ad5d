"""Cumulative billing and earnings across batches: what each commit's roots are built from.

Billing and rewards trees hold cumulative totals, so one withdrawal or claim proof covers every
batch so far. The ledger is pure: feed it settled invocations and emissions, read the trees.
"""

from dataclasses import dataclass, field

from eth_utils import to_checksum_address

from offchain.crypto.hashing import keccak
from offchain.protocol import billing, merkle, rewards
from offchain.protocol.invocation.rules import price_split


@dataclass(frozen=True)
class Invocation:
    """One settled invocation: who paid, who served, who routed, the price, the socket's issuer.

    ``issuer`` is None when the serving node is the socket's issuer (then it is paid as the node).
    """

    user: str
    node_owner: str
    router: str
    price: int
    record_hash: bytes
    issuer: str | None = None


@dataclass
class Ledger:
    """Cumulative spent per user and earned per account, over every committed batch."""

    router_share_bps: int = rewards.DEFAULT_ROUTER_SHARE_BPS
    spent: dict[str, int] = field(default_factory=dict)
    earned: dict[str, int] = field(default_factory=dict)

    def apply(self, invocations: list[Invocation]) -> int:
        """Bill and credit ``invocations``; return the batch's billed total.

        Each price is split as ``rules.price_split`` (and GPUComputeReward's ``split_price``)
        says: the router's share, the issuer's share when another node served its socket, and
        the node the rest.
        """
        billed = 0
        for invocation in invocations:
            issuer = invocation.issuer
            issuer_served = issuer is None or issuer.lower() == invocation.node_owner.lower()
            split = price_split(invocation.price, issuer_served, self.router_share_bps)
            self._add(self.spent, invocation.user, invocation.price)
            self._add(self.earned, invocation.router, split.router)
            self._add(self.earned, invocation.node_owner, split.node)
            if not issuer_served:
                self._add(self.earned, issuer, split.issuer)
            billed += invocation.price
        return billed

    def add_depositor(self, user: str) -> None:
        """Give a depositor a leaf (cumulative spent 0) even before it spends anything.

        ComputeMarket requires a proof from every depositor once a commit after its first
        deposit has settled, so every root must hold every depositor, spent or not.
        """
        self._add(self.spent, user, 0)

    def emit(self, recipients: list[str], amount: int) -> None:
        """Credit ``amount`` of proof-of-compute emission, split evenly over ``recipients``."""
        if not recipients:
            return
        share = amount // len(recipients)
        for recipient in recipients:
            self._add(self.earned, recipient, share)

    def billing_root(self) -> bytes:
        """Return the root of (user, cumulative spent)."""
        tree, _ = billing.build_billing_tree(self.spent)
        return tree.root

    def rewards(self) -> rewards.RewardsTree:
        """Return the rewards tree of (account, cumulative earned)."""
        return rewards.rewards_tree(self.earned)

    @staticmethod
    def _add(table: dict[str, int], account: str, amount: int) -> None:
        key = to_checksum_address(account)
        table[key] = table.get(key, 0) + amount


def batch_root(invocations: list[Invocation]) -> bytes:
    """Return the Merkle root of a batch's invocation record hashes, in batch order."""
    return merkle.build([merkle.leaf_hash(i.record_hash) for i in invocations]).root


def record_hash(*parts: bytes | str | int) -> bytes:
    """Return a deterministic record hash for demo and test invocations."""
    encoded = b"".join(p if isinstance(p, bytes) else str(p).encode() for p in parts)
    return keccak(encoded)
