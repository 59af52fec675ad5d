"""The records the routers gossip for the demo traffic: collecting them, and checking them.

``RecordsSeen`` takes them from the feed as they arrive and faults any record of an order that
was not sent or not served, or a second one; ``check_records`` checks them against the chain as a
validator does.
"""

from collections.abc import Sequence

import trio

from offchain.chain.chain_client import ChainClient
from offchain.chain.market_view import MarketSnapshot, connect_market
from offchain.protocol.invocation import InvocationDomain, InvocationRecord, check_record
from offchain.protocol.ledger import Invocation
from offchain.protocol.roles import ROLE_ROUTER


class RecordsSeen:
    """The records the feed delivered for the demo's orders, by request hash.

    A record of an order the devnet did not send, or a second record of one, is a fault; so is,
    once the answers are in (``expect``), a record of an order that was not served. ``done`` is
    set when every served order has its record, or at the first fault.
    """

    def __init__(self, orders: set[bytes]) -> None:
        self.orders = orders
        self.by_request: dict[bytes, InvocationRecord] = {}
        self.faults: list[str] = []
        self.served: set[bytes] | None = None
        self.done = trio.Event()

    def add(self, record: InvocationRecord) -> None:
        """Take one record from the feed."""
        request = record.receipt.request_hash
        if request not in self.orders:
            self.faults.append(f"a record of no demo order ({request.hex()})")
        elif request in self.by_request:
            self.faults.append(f"a second record of order {request.hex()}")
        else:
            self.by_request[request] = record
        self._update()

    def expect(self, served: set[bytes]) -> None:
        """Note the orders that were served: each must have one record, and no other order."""
        self.served = served
        self._update()

    def _update(self) -> None:
        if self.served is not None:
            unserved = self.by_request.keys() - self.served
            self.faults += [f"a record of refused order {h.hex()}" for h in unserved]
            for request in unserved:
                del self.by_request[request]
        if self.faults or (self.served is not None and self.served <= self.by_request.keys()):
            self.done.set()


def check_records(
    chain: ChainClient, domain: InvocationDomain, records: Sequence[InvocationRecord]
) -> list[Invocation]:
    """Check each record against the chain, as a validator does; return what each one bills.

    The checks read the contracts at one block (``MarketSnapshot``): signatures, the socket and
    its holder, the deadline, the nonce not billed before, the price on the socket's terms, the
    user's escrow counting the records before it, the node that served, and the router staked.
    Raises the ``InvocationRejected`` of the first record that fails.
    """
    billed: set[tuple[str, int]] = set()
    reader = connect_market(chain.w3.provider.endpoint_uri, chain_id=chain.record["chain_id"])
    view = MarketSnapshot(reader, lambda user, nonce: (user, nonce) in billed)
    now = chain.w3.eth.get_block(view.block)["timestamp"]
    staking = chain["Staking"]
    pending: dict[str, int] = {}
    invocations = []
    for record in records:
        user = record.request.user
        check_record(record, domain, view, now, pending.get(user, 0))
        router = record.receipt.router
        if not staking.functions.is_active(router, ROLE_ROUTER).call(block_identifier=view.block):
            raise RuntimeError(f"record countersigned by {router}, no staked router")
        billed.add((user, record.request.nonce))
        pending[user] = pending.get(user, 0) + record.receipt.price
        socket = view.socket(record.request.socket_id)
        issuer = socket.issuer if socket is not None else None
        invocations.append(Invocation.from_record(record, domain, issuer))
    return invocations
