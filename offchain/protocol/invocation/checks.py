"""The checks of invocation requests and records: pure functions over a ``ChainView``.

Each returns what it was given or raises the ``InvocationRejected`` subclass that names the
reason. Routers run ``check_request`` before routing and ``check_record`` on the node's answer,
from their cached view; validators run ``check_record`` from the chain. ``now`` is the Unix time
the check is made for; ``pending`` is the user's spend in records not yet proven on-chain,
other than the one checked.
"""

from offchain.crypto.hashing import keccak
from offchain.protocol.invocation.eip712 import (
    recover_receipt_signer,
    recover_record_signer,
    recover_request_signer,
    request_digest,
)
from offchain.protocol.invocation.invocation_errors import (
    BadNodeSignature,
    BadRouterSignature,
    BadSignature,
    DeadlineExpired,
    DelegateExpired,
    EscrowExhausted,
    NodeBlacklisted,
    NodeNotAllowed,
    NodeUnregistered,
    NodeUnstaked,
    NonceReused,
    OutputMismatch,
    PriceAboveMax,
    PriceOffTerms,
    ReceiptMismatch,
    SocketExpired,
    SocketNotHeld,
    UnknownSocket,
    WorkloadMismatch,
)
from offchain.protocol.invocation.rules import may_serve, needs_stake, socket_price
from offchain.protocol.invocation.types import (
    ChainView,
    EscrowInfo,
    InvocationDomain,
    InvocationRecord,
    InvocationRequest,
    NodeInfo,
    SocketInfo,
)


def content_hash(data: bytes) -> bytes:
    """Return the hash of an input or output as requests and receipts carry it."""
    return keccak(data)


def escrow_headroom(escrow: EscrowInfo, pending: int) -> int:
    """Return what ``escrow`` can still pay: its balance less unapplied, requested and pending."""
    unapplied = max(0, escrow.proven_spent - escrow.applied_spent)
    return escrow.balance - unapplied - escrow.withdrawal_requested - pending


def _socket(view: ChainView, socket_id: int) -> SocketInfo:
    """Return socket ``socket_id`` from ``view``, or raise ``UnknownSocket``."""
    socket = view.socket(socket_id)
    if socket is None:
        raise UnknownSocket(f"no socket {socket_id}")
    return socket


def _registered(view: ChainView, address: str, role: str) -> NodeInfo:
    """Return ``address``'s registry entry, refusing an absent or blacklisted node."""
    node = view.node(address)
    if node is None:
        raise NodeUnregistered(f"{role} {address} is not in the node registry")
    if node.blacklisted:
        raise NodeBlacklisted(f"{role} {address} is blacklisted")
    return node


# ----------------------------------------------------------------------------------------------
# The request, before it is routed
# ----------------------------------------------------------------------------------------------


def check_request_signature(
    request: InvocationRequest, signature: bytes, domain: InvocationDomain
) -> InvocationRequest:
    """Check that ``request.user`` signed ``request`` under ``domain``."""
    signer = recover_request_signer(request, signature, domain)
    if signer != request.user:
        raise BadSignature(f"signed by {signer}, not {request.user} (or another chain/contract)")
    return request


def check_socket(request: InvocationRequest, view: ChainView, now: int) -> InvocationRequest:
    """Check that the socket exists, serves now, is used by its holder or user, for its workload."""
    socket = _socket(view, request.socket_id)
    if now >= socket.expiry:
        raise SocketExpired(f"socket {request.socket_id} expired at {socket.expiry}")
    issuer = _registered(view, socket.issuer, "socket issuer")
    if not issuer.staked:
        raise NodeUnstaked(f"socket issuer {socket.issuer} has no active compute stake")
    if request.user != socket.holder:
        if request.user != socket.user:
            raise SocketNotHeld(f"{request.user} neither holds nor uses socket {request.socket_id}")
        if now >= socket.user_expires:
            raise DelegateExpired(f"{request.user}'s use ended at {socket.user_expires}")
    if request.workload != socket.workload:
        raise WorkloadMismatch(f"socket {request.socket_id} serves {socket.workload!r}")
    return request


def check_freshness(request: InvocationRequest, view: ChainView, now: int) -> InvocationRequest:
    """Check that the deadline has not passed and the nonce is unused."""
    if now > request.deadline:
        raise DeadlineExpired(f"deadline {request.deadline} passed at {now}")
    if view.nonce_used(request.user, request.nonce):
        raise NonceReused(f"{request.user} already used nonce {request.nonce}")
    return request


def check_affordable(
    request: InvocationRequest, view: ChainView, pending: int
) -> InvocationRequest:
    """Check that the socket's price is within ``max_price`` and the user's escrow headroom."""
    price = _socket(view, request.socket_id).price
    if price > request.max_price:
        raise PriceAboveMax(f"socket price {price} above max_price {request.max_price}")
    headroom = escrow_headroom(view.escrow(request.user), pending)
    if headroom < price:
        raise EscrowExhausted(f"escrow headroom {headroom} below price {price}")
    return request


def check_request(
    request: InvocationRequest,
    signature: bytes,
    domain: InvocationDomain,
    view: ChainView,
    now: int,
    pending: int,
) -> InvocationRequest:
    """Check ``request`` and its signature as a router does before routing it."""
    check_request_signature(request, signature, domain)
    check_socket(request, view, now)
    check_freshness(request, view, now)
    return check_affordable(request, view, pending)


# ----------------------------------------------------------------------------------------------
# The record, once the node has answered
# ----------------------------------------------------------------------------------------------


def check_signatures(record: InvocationRecord, domain: InvocationDomain) -> InvocationRecord:
    """Check the user's, node's and router's signatures and that the receipt is the request's."""
    check_request_signature(record.request, record.user_signature, domain)
    receipt = record.receipt
    if receipt.request_hash != request_digest(record.request, domain):
        raise ReceiptMismatch("the receipt's request_hash is not this request's digest")
    worker = recover_receipt_signer(receipt, record.node_signature, domain)
    if worker != receipt.worker:
        raise BadNodeSignature(f"receipt signed by {worker}, not its worker {receipt.worker}")
    router = recover_record_signer(record, record.router_signature, domain)
    if router != receipt.router:
        raise BadRouterSignature(f"record signed by {router}, not its router {receipt.router}")
    return record


def check_output(record: InvocationRecord, output: bytes) -> InvocationRecord:
    """Check that ``output`` hashes to the receipt's ``output_hash``."""
    if content_hash(output) != record.receipt.output_hash:
        raise OutputMismatch("the output does not hash to the receipt's output_hash")
    return record


def check_price(record: InvocationRecord, view: ChainView) -> InvocationRecord:
    """Check that the receipt's price is within ``max_price`` and is the socket's price."""
    receipt, request = record.receipt, record.request
    if receipt.price > request.max_price:
        raise PriceAboveMax(f"price {receipt.price} above max_price {request.max_price}")
    expected = socket_price(_socket(view, request.socket_id), receipt.units)
    if receipt.price != expected:
        raise PriceOffTerms(f"price {receipt.price}, the socket's terms say {expected}")
    return record


def check_escrow(record: InvocationRecord, view: ChainView, pending: int) -> InvocationRecord:
    """Check that the user's escrow headroom, counting ``pending``, pays the receipt's price."""
    headroom = escrow_headroom(view.escrow(record.request.user), pending)
    if headroom < record.receipt.price:
        raise EscrowExhausted(f"escrow headroom {headroom} below price {record.receipt.price}")
    return record


def check_node(record: InvocationRecord, view: ChainView) -> InvocationRecord:
    """Check that the worker is registered, not blacklisted, admitted and staked as required."""
    worker = record.receipt.worker
    socket = _socket(view, record.request.socket_id)
    node = _registered(view, worker, "node")
    if not may_serve(socket, worker, node):
        raise NodeNotAllowed(f"node {worker} may not serve socket {record.request.socket_id}")
    if needs_stake(socket, worker) and not node.staked:
        raise NodeUnstaked(f"node {worker} has no active compute stake")
    return record


def check_record(
    record: InvocationRecord,
    domain: InvocationDomain,
    view: ChainView,
    now: int,
    pending: int,
    output: bytes | None = None,
) -> InvocationRecord:
    """Check everything about ``record`` (and its ``output``, when given)."""
    check_signatures(record, domain)
    if output is not None:
        check_output(record, output)
    check_socket(record.request, view, now)
    check_freshness(record.request, view, now)
    check_price(record, view)
    check_escrow(record, view, pending)
    return check_node(record, view)
