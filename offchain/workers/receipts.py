"""A compute node's side of the invocation protocol: accept a signed order, sign its receipt.

Pure: the node agent passes the chain view it prices from and the key bound to its stake.

``accept`` runs before any work: it decodes the order the router passed on, checks that it is
the order for this input and workload and that the socket exists. ``sign`` runs after the work,
on the output the node itself produced: it hashes that output, prices the units under the
socket's terms (``rules.socket_price``), refuses a price above the order's ``max_price``, and
signs the receipt. It takes the output bytes, never a hash, so a node cannot sign a receipt
for output it did not produce.
"""

from dataclasses import dataclass

from offchain.crypto.keys import Keypair
from offchain.protocol.invocation import (
    ChainView,
    InvocationDomain,
    InvocationRequest,
    Receipt,
    content_hash,
    decode_request,
    encode_receipt,
    request_digest,
    sign_receipt,
    socket_price,
)
from offchain.protocol.invocation.eip712 import address_from_bytes
from offchain.protocol.invocation.invocation_errors import (
    InputMismatch,
    PriceAboveMax,
    ReceiptMismatch,
    UnknownSocket,
    WorkloadMismatch,
)
from offchain.protocol.wire import Request


@dataclass(frozen=True)
class Accepted:
    """An order the node will run: the order, its digest and the router it answers through."""

    order: InvocationRequest
    digest: bytes
    router: str


@dataclass(frozen=True)
class SignedReceipt:
    """A receipt's canonical encoding and the node's signature of it."""

    receipt: Receipt
    encoded: bytes
    signature: bytes


def order_of(request: Request) -> InvocationRequest:
    """Return the order ``request`` carries, decoded (not yet checked)."""
    return decode_request(request.invocation)


def accept(
    request: Request,
    domain: InvocationDomain,
    view: ChainView,
    order: InvocationRequest | None = None,
) -> Accepted:
    """Return the order ``request`` carries, or raise the ``InvocationRejected`` reason.

    ``order`` is ``order_of(request)`` when the caller already decoded it.
    """
    if order is None:
        order = order_of(request)
    if order.workload != request.workload:
        raise WorkloadMismatch(f"the order is for {order.workload!r}")
    if content_hash(request.payload) != order.input_hash:
        raise InputMismatch("the input does not hash to the order's input_hash")
    if view.socket(order.socket_id) is None:
        raise UnknownSocket(f"no socket {order.socket_id}")
    if not request.router:
        raise ReceiptMismatch("the request names no serving router for the receipt")
    return Accepted(order, request_digest(order, domain), address_from_bytes(request.router))


def sign(
    accepted: Accepted,
    output: bytes,
    units: int,
    key: Keypair,
    domain: InvocationDomain,
    view: ChainView,
) -> SignedReceipt:
    """Return the signed receipt of ``output``, produced for ``accepted`` in ``units`` units."""
    socket = view.socket(accepted.order.socket_id)
    if socket is None:
        raise UnknownSocket(f"no socket {accepted.order.socket_id}")
    price = socket_price(socket, units)
    if price > accepted.order.max_price:
        raise PriceAboveMax(f"price {price} above max_price {accepted.order.max_price}")
    receipt = Receipt(
        request_hash=accepted.digest,
        output_hash=content_hash(output),
        units=units,
        price=price,
        worker=key.address,
        router=accepted.router,
    )
    return SignedReceipt(
        receipt, encode_receipt(receipt), sign_receipt(key.private_key, receipt, domain)
    )
