"""A router's admission of signed invocation orders: pure state, no I/O, ``now`` passed in.

Before a request is routed, ``Admission.admit`` decodes the user's ``InvocationRequest`` from
the request, checks that it is the order for this input and workload, checks its signature,
rate-limits its signer, runs ``check_request`` against the router's chain view with the signer's
pending spend, and refuses a nonce this router has already admitted. An admitted order holds
a ``Ticket``: its price counts against the signer's escrow headroom from then on. The agent
ends each ticket exactly once:

- ``served``: a record was published; the price stays pending until a commit proves it
  (``covered``), because the escrow balance the view reads does not include it yet;
- ``failed``: nothing was served, so nothing is billed: the price is no longer pending and the
  nonce may be used again.

Nonces are remembered until the order's deadline has passed (after it, the deadline check
refuses the order anyway), so the memory is bounded by the orders of a deadline window.
"""

import heapq
from dataclasses import dataclass

from offchain.protocol.invocation import (
    ChainView,
    InvocationDomain,
    InvocationRequest,
    check_affordable,
    check_freshness,
    check_request_signature,
    check_socket,
    content_hash,
    decode_request,
    request_digest,
    socket_price,
)
from offchain.protocol.invocation.invocation_errors import (
    InputMismatch,
    NonceReused,
    RateLimited,
    Unsigned,
    WorkloadMismatch,
)
from offchain.protocol.wire import Request
from offchain.routers.gossip import TokenBucket


@dataclass(frozen=True)
class AdmissionPolicy:
    """Per-signer limits: orders a second and the burst above that rate."""

    rate_per_s: float = 200.0
    burst: int = 400
    # The signers whose rate is tracked at once; the least recently seen are forgotten first
    # (a forgotten signer starts again with a full burst, which costs a flood little).
    max_signers: int = 100_000

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1 or self.max_signers < 1:
            raise ValueError("rate_per_s must be positive, burst and max_signers at least 1")


@dataclass(frozen=True)
class Ticket:
    """An admitted order: its request digest, its signer, the price it holds against escrow."""

    order: InvocationRequest
    signature: bytes
    digest: bytes
    price: int


def order_of(request: Request) -> InvocationRequest:
    """Return the signed order ``request`` carries, checked to be for its input and workload."""
    if not request.invocation:
        raise Unsigned("this router serves signed invocation orders only")
    order = decode_request(request.invocation)
    if order.workload != request.workload:
        raise WorkloadMismatch(f"the order is for {order.workload!r}")
    if content_hash(request.payload) != order.input_hash:
        raise InputMismatch("the input does not hash to the order's input_hash")
    return order


class Admission:
    """The orders a router has admitted: pending spend per signer, nonces, and rate buckets."""

    def __init__(
        self, domain: InvocationDomain, view: ChainView, policy: AdmissionPolicy | None = None
    ) -> None:
        self.domain = domain
        self.view = view
        self.policy = policy or AdmissionPolicy()
        # Spend of admitted orders not yet proven by a commit, by signer.
        self.pending: dict[str, int] = {}
        # Nonces admitted and not yet past their deadline (nonce -> deadline), by signer; and
        # their expiry order.
        self._nonces: dict[str, dict[int, int]] = {}
        self._expiries: list[tuple[int, str, int]] = []
        self._buckets: dict[str, TokenBucket] = {}

    def admit(self, request: Request, now: float, order: InvocationRequest | None = None) -> Ticket:
        """Return the ticket of ``request``'s order, or raise the ``InputRejected`` reason.

        That is an ``InvocationRejected``, or the decoder's ``CborError`` for bytes that are no
        canonical CBOR.

        ``order`` is ``order_of(request)`` when the caller already decoded it (to wait until
        its chain view has read what the order is checked against).
        """
        if order is None:
            order = order_of(request)
        unix = int(now)
        self._forget_expired(unix)
        # ``check_request``'s checks, in its order, with the router's own state between them.
        # The signature first: a forged order must not spend its claimed signer's rate.
        check_request_signature(order, request.signature, self.domain)
        if not self._bucket(order.user, now).take(now):
            raise RateLimited(f"{order.user} is over {self.policy.rate_per_s:g} orders a second")
        check_socket(order, self.view, unix)
        check_freshness(order, self.view, unix)
        if self.nonce_held(order.user, order.nonce):
            raise NonceReused(f"{order.user} already sent nonce {order.nonce}")
        pending = self.pending.get(order.user, 0)
        check_affordable(order, self.view, pending)
        socket = self.view.socket(order.socket_id)
        assert socket is not None  # check_socket refused an unknown socket
        # Sockets price per invocation (``rules.socket_price``): the units are not known yet
        # and do not change the price.
        price = socket_price(socket, 0)
        self.pending[order.user] = pending + price
        self._nonces.setdefault(order.user, {})[order.nonce] = order.deadline
        heapq.heappush(self._expiries, (order.deadline, order.user, order.nonce))
        return Ticket(order, request.signature, request_digest(order, self.domain), price)

    def nonce_held(self, user: str, nonce: int) -> bool:
        """Return whether ``user``'s ``nonce`` belongs to an order admitted and not released."""
        return nonce in self._nonces.get(user, {})

    def failed(self, ticket: Ticket) -> None:
        """Release ``ticket``: nothing was served, so its price is not pending, its nonce free."""
        self._unpend(ticket.order.user, ticket.price)
        self._forget_nonce(ticket.order.user, ticket.order.nonce, ticket.order.deadline)

    def covered(self, user: str, amount: int) -> None:
        """Note that a commit proved ``amount`` more of ``user``'s spend: no longer pending."""
        self._unpend(user, amount)

    def _unpend(self, user: str, amount: int) -> None:
        left = self.pending.get(user, 0) - amount
        if left > 0:
            self.pending[user] = left
        else:
            self.pending.pop(user, None)

    def _bucket(self, user: str, now: float) -> TokenBucket:
        bucket = self._buckets.pop(user, None)
        if bucket is None:
            if len(self._buckets) >= self.policy.max_signers:
                # Dicts keep insertion order and a bucket is re-inserted on each use: the
                # first is the least recently seen.
                del self._buckets[next(iter(self._buckets))]
            bucket = TokenBucket(self.policy.rate_per_s, self.policy.burst, now)
        self._buckets[user] = bucket
        return bucket

    def _forget_expired(self, now: int) -> None:
        """Forget nonces whose orders' deadlines have passed: the deadline check refuses them."""
        while self._expiries and self._expiries[0][0] < now:
            deadline, user, nonce = heapq.heappop(self._expiries)
            self._forget_nonce(user, nonce, deadline)

    def _forget_nonce(self, user: str, nonce: int, deadline: int) -> None:
        """Forget ``user``'s ``nonce`` if it is still held for the order with ``deadline``."""
        nonces = self._nonces.get(user)
        # A nonce released and admitted again for a later deadline is another order's.
        if nonces is not None and nonces.get(nonce) == deadline:
            del nonces[nonce]
            if not nonces:
                del self._nonces[user]
