"""A router's check of a node's answer, and the countersigned record it publishes: pure.

``countersign`` takes the admitted order (``admission.Ticket``) and the node's response, checks
the node's receipt (it is this order's, signed by its worker, for the output the node returned,
priced within ``max_price`` and by the socket's terms, from a node that may serve the socket)
and returns the ``InvocationRecord`` countersigned by the router. Anything else raises the
``InputRejected`` that names why (an ``InvocationRejected``, or the decoder's ``CborError``
for a receipt that is no canonical CBOR): the caller gets that reason and no output, and nothing
is billed, since no record exists.

The user's signature and the escrow were checked at admission (``admission.Admission``), so
they are not checked again here; validators run the full ``check_record``.
"""

from dataclasses import replace

from offchain.protocol.invocation import (
    ChainView,
    InvocationDomain,
    InvocationRecord,
    check_node,
    check_output,
    check_price,
    decode_receipt,
    recover_receipt_signer,
    sign_record,
)
from offchain.protocol.invocation.invocation_errors import (
    BadNodeSignature,
    NodeMismatch,
    ReceiptMismatch,
)
from offchain.protocol.wire import Response
from offchain.routers.admission import Ticket


def node_record(ticket: Ticket, response: Response, domain: InvocationDomain) -> InvocationRecord:
    """Return the record of ``response``'s receipt for ``ticket``'s order, not yet countersigned.

    Checks that the receipt is this order's and that its worker signed it.
    """
    if not response.receipt or not response.node_signature:
        raise BadNodeSignature("the node's answer carries no signed receipt")
    receipt = decode_receipt(response.receipt)
    if receipt.request_hash != ticket.digest:
        raise ReceiptMismatch("the receipt's request_hash is not this order's digest")
    signer = recover_receipt_signer(receipt, response.node_signature, domain)
    if signer != receipt.worker:
        raise BadNodeSignature(f"receipt signed by {signer}, not its worker {receipt.worker}")
    return InvocationRecord(
        request=ticket.order,
        user_signature=ticket.signature,
        receipt=receipt,
        node_signature=response.node_signature,
        router_signature=b"",
    )


def countersign(
    ticket: Ticket,
    response: Response,
    *,
    node_address: str,
    router: str,
    router_key: bytes,
    domain: InvocationDomain,
    view: ChainView,
) -> InvocationRecord:
    """Return the record of the node's answer, countersigned with ``router_key``.

    ``node_address`` is the staked address of the node the router sent the order to and
    ``router`` the router's own; the receipt must name both.
    """
    record = node_record(ticket, response, domain)
    receipt = record.receipt
    if receipt.worker != node_address:
        raise NodeMismatch(f"receipt names {receipt.worker}, the order went to {node_address}")
    if receipt.router != router:
        raise ReceiptMismatch(f"receipt names router {receipt.router}, not {router}")
    check_output(record, response.output)
    check_price(record, view)
    check_node(record, view)
    return replace(record, router_signature=sign_record(router_key, record, domain))
