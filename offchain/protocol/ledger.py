"""Cumulative billing and earnings across batches: what each commit's roots are built from.

Billing and rewards trees hold cumulative totals, so one withdrawal or claim proof covers every
batch so far. The ledger is pure: feed it settled invocations and emissions, read the trees.

A settled invocation is an ``InvocationRecord`` (``offchain/protocol/invocation``), billed as
``Invocation.from_record`` reads it: the user that signed the order pays the receipt's price
(the billing leaf is that user's cumulative spent, as ComputeMarket checks it), the receipt's
worker and router earn their shares, and the record's id in the batch root is its EIP-712
digest (``record_digest``), the one hash of a record that routers gossip and validators settle.
"""

from dataclasses import dataclass, field

from eth_utils import to_checksum_address

from offchain.protocol import billing, merkle, rewards
from offchain.protocol.invocation import InvocationDomain, InvocationRecord, record_digest
from offchain.protocol.invocation.rules import price_split


@dataclass(frozen=True)
class Invocation:
    """One settled invocation: who paid, who served and routed it, the price, the issuer, its id.

    ``issuer`` is None when the serving node is the socket's issuer (then it is paid as the node).
    """

    user: str
    node_owner: str
    router: str
    price: int
    record_hash: bytes
    issuer: str | None = None

    @classmethod
    def from_record(
        cls, record: InvocationRecord, domain: InvocationDomain, socket_issuer: str | None = None
    ) -> "Invocation":
        """Return what ``record`` bills: its signer pays its receipt's price to those it names.

        The node and router earn their shares, and ``socket_issuer`` (the socket's issuer, as
        the chain reads it) its share when another node served the socket. ``record_hash`` is
        the record's EIP-712 digest under ``domain`` (``record_digest``).
        """
        receipt = record.receipt
        issuer = socket_issuer if socket_issuer not in (None, receipt.worker) else None
        return cls(
            user=record.request.user,
            node_owner=receipt.worker,
            router=receipt.router,
            price=receipt.price,
            record_hash=record_digest(record, domain),
            issuer=issuer,
        )


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
