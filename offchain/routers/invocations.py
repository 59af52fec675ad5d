"""The router's invocation checks as the agent calls them: admission, the receipt, the record.

The decisions are pure (``admission``, ``records``); this class adds the two things they
cannot do: it reads the clock, and it waits, bounded, until a following chain view
(``offchain/chain/market_view.py``) has read what an order or receipt is checked against, so
that a socket, registry entry or escrow the router has not seen yet is read rather than
refused as absent. A static view (tests, benches) needs no wait.

One request's life in the agent:

1. ``admit(request)``: the ticket, or the ``InputRejected`` reason to answer with;
2. ``to_node(request, ticket)`` is what a local node is sent (it names this router, which the
   node's receipt must name); a forwarded request goes on unchanged;
3. ``settle(ticket, response, node_address)`` on a local node's answer: the countersigned
   record, or the reason (the ticket is released: nothing is billed);
   ``check_forwarded(ticket, response)`` on another router's answer: its receipt is checked,
   and that router publishes the record;
4. ``failed(ticket)`` when no answer came: nothing is billed.
"""

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from offchain.crypto.keys import Keypair
from offchain.protocol.errors import InputRejected
from offchain.protocol.invocation import (
    ChainView,
    EscrowInfo,
    FollowingView,
    InvocationDomain,
    InvocationRecord,
    check_output,
)
from offchain.protocol.wire import Request, Response
from offchain.routers import records
from offchain.routers.admission import Admission, AdmissionPolicy, Ticket, order_of


class InvocationChecks:
    """A router's checks of signed orders and node receipts, over its chain view."""

    def __init__(
        self,
        domain: InvocationDomain,
        view: ChainView,
        key: Keypair,
        policy: AdmissionPolicy | None = None,
        ready_timeout_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        node_key: Callable[[str], Any] | None = None,
    ) -> None:
        # ``node_key`` names a node's registry entry among a following view's keys
        # (``market_view.node_key``); without it, a receipt's node is not waited for.
        self.domain = domain
        self.view = view
        self.key = key
        self.admission = Admission(domain, view, policy)
        self.ready_timeout_s = ready_timeout_s
        self.clock = clock
        self._router_bytes = bytes.fromhex(key.address[2:])
        self._following = view if isinstance(view, FollowingView) else None
        self._node_key = node_key
        # The spend each user's escrow had proven when last read (``escrow_changed``).
        self._proven: dict[str, int] = {}

    async def admit(self, request: Request) -> Ticket:
        """Return the ticket of ``request``'s signed order, or raise why it is refused."""
        order = order_of(request)
        if self._following is not None:
            # Not read in time: the checks run on what is known, and refuse what is absent.
            await self._following.ready_for(order.socket_id, order.user, self.ready_timeout_s)
        return self.admission.admit(request, self.clock(), order)

    def to_node(self, request: Request) -> Request:
        """Return ``request`` as a local node is sent it: naming this router for its receipt."""
        return replace(request, router=self._router_bytes)

    async def settle(
        self, ticket: Ticket, response: Response, node_address: str
    ) -> InvocationRecord:
        """Return the countersigned record of a local node's answer, or raise why not.

        On a refusal the ticket is released: the caller gets the reason and nothing is billed.
        """
        try:
            if self._following is not None and self._node_key is not None:
                await self._following.ready([self._node_key(node_address)], self.ready_timeout_s)
            return records.countersign(
                ticket,
                response,
                node_address=node_address,
                router=self.key.address,
                router_key=self.key.private_key,
                domain=self.domain,
                view=self.view,
            )
        except InputRejected:  # an InvocationRejected, or bytes the decoder refused
            self.admission.failed(ticket)
            raise

    def check_forwarded(self, ticket: Ticket, response: Response) -> None:
        """Check another router's answer: the receipt is this order's, signed, for the output.

        That router checked the rest and publishes the record. On a refusal the ticket is
        released.
        """
        try:
            check_output(records.node_record(ticket, response, self.domain), response.output)
        except InputRejected:  # an InvocationRejected, or bytes the decoder refused
            self.admission.failed(ticket)
            raise

    def escrow_changed(self, user: str, escrow: EscrowInfo) -> None:
        """Note ``user``'s escrow as the view now reads it: spend proven since is no longer pending.

        The first reading only sets the mark: what was proven before it was never counted here.
        """
        last = self._proven.get(user)
        self._proven[user] = escrow.proven_spent
        if last is not None and escrow.proven_spent > last:
            self.admission.covered(user, escrow.proven_spent - last)

    def failed(self, ticket: Ticket) -> None:
        """Release ``ticket``: the order was not served, so nothing is billed."""
        self.admission.failed(ticket)
