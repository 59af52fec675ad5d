"""The invocation flow without a network: a caller signs, the router admits, the node signs its
receipt, the router countersigns the record, the caller checks the receipt, a validator's
``check_record`` accepts the record. Each fault is refused with its reason and holds nothing."""

import dataclasses

import pytest
from eth_account import Account

from offchain.crypto.keys import keypair_from_private_key
from offchain.protocol.errors import InputRejected
from offchain.protocol.invocation import (
    EscrowInfo,
    InvocationDomain,
    MemoryChainView,
    NodeInfo,
    SocketInfo,
    check_record,
    content_hash,
    decode_receipt,
    encode_receipt,
    encode_request,
    sign_receipt,
    split_price,
)
from offchain.protocol.invocation.invocation_errors import CALLER_REASONS, InvocationRejected
from offchain.protocol.wire import Request, Response
from offchain.routers.admission import Admission, AdmissionPolicy
from offchain.routers.invocations import InvocationChecks
from offchain.routers.records import countersign
from offchain.routers.router_client import (
    InvocationFailed,
    order_for,
    sign_order,
    signed_request,
    verify_receipt,
)
from offchain.workers import receipts

USER = Account.from_key(b"\x11" * 32)
DELEGATE = Account.from_key(b"\x12" * 32)
STRANGER = Account.from_key(b"\x13" * 32)
NODE = keypair_from_private_key(b"\x14" * 32)
OTHER_NODE = keypair_from_private_key(b"\x15" * 32)
ROUTER = keypair_from_private_key(b"\x16" * 32)

DOMAIN = InvocationDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
NOW = 1_800_000_000
PRICE = 10**15
WORKLOAD = "echo"
INPUT = b"input bytes"
SOCKET_ID = 1

SERVING = NodeInfo(staked=True, blacklisted=False, workloads=frozenset({WORKLOAD}))
SOCKET = SocketInfo(
    holder=USER.address,
    workload=WORKLOAD,
    price=PRICE,
    issuer=NODE.address,
    expiry=NOW + 10_000,
    user=DELEGATE.address,
    user_expires=NOW + 100,
)
VIEW = MemoryChainView(
    sockets={SOCKET_ID: SOCKET},
    nodes={NODE.address: SERVING, OTHER_NODE.address: SERVING},
    escrows={USER.address: EscrowInfo(3 * PRICE), DELEGATE.address: EscrowInfo(PRICE)},
    used_nonces=frozenset({(USER.address, 3)}),
)


def order(signer=USER, **changes):
    fields = {"nonce": 7, "deadline": NOW + 60}
    fields.update(changes)
    payload = fields.pop("payload", INPUT)
    return order_for(signer.address, SOCKET_ID, WORKLOAD, payload, PRICE, **fields)


def request_of(the_order, signer=USER, payload: bytes = INPUT, domain=DOMAIN) -> Request:
    return signed_request(the_order, sign_order(signer, the_order, domain), payload)


def node_answer(request: Request, output: bytes | None = None, key=NODE, view=VIEW) -> Response:
    """Return the node's answer: the echo of the input, with the receipt of ``output``."""
    served = dataclasses.replace(request, router=bytes.fromhex(ROUTER.address[2:]))
    accepted = receipts.accept(served, DOMAIN, view)
    produced = request.payload if output is None else output
    signed = receipts.sign(accepted, produced, 1, key, DOMAIN, view)
    return Response(
        request.request_id,
        True,
        output=request.payload,
        receipt=signed.encoded,
        node_signature=signed.signature,
    )


def route(admission: Admission, request: Request, response: Response, view=VIEW):
    ticket = admission.admit(request, NOW)
    try:
        record = countersign(
            ticket,
            response,
            node_address=NODE.address,
            router=ROUTER.address,
            router_key=ROUTER.private_key,
            domain=DOMAIN,
            view=view,
        )
    except InvocationRejected:
        admission.failed(ticket)
        raise
    return record


def test_flow__signed_with_eth_account__served_checked_and_valid_for_validators():
    admission = Admission(DOMAIN, VIEW)
    the_order = order()
    request = request_of(the_order)
    response = node_answer(request)
    record = route(admission, request, response)
    invoked = verify_receipt(response, the_order, DOMAIN)
    assert invoked.output == INPUT and invoked.receipt.price == PRICE
    assert check_record(record, DOMAIN, VIEW, NOW, 0, output=INPUT) == record
    assert admission.pending == {USER.address: PRICE}
    assert split_price(record.receipt.price, SOCKET, NODE.address).router == PRICE // 10


def test_admit__order_and_its_workload_changed_together__bad_signature():
    signed = order()
    changed = dataclasses.replace(signed, workload="sleep")
    request = dataclasses.replace(
        request_of(signed), invocation=encode_request(changed), workload="sleep"
    )
    with pytest.raises(InvocationRejected) as refused:
        Admission(DOMAIN, VIEW).admit(request, NOW)
    assert refused.value.reason == "bad-signature"


def test_flow__signed_with_a_raw_key__same_signature_as_eth_account():
    the_order = order()
    assert sign_order(bytes(USER.key), the_order, DOMAIN) == sign_order(USER, the_order, DOMAIN)


def test_flow__delegate_signs_for_its_own_escrow__served():
    admission = Admission(DOMAIN, VIEW)
    request = request_of(order(DELEGATE), DELEGATE)
    route(admission, request, node_answer(request))
    assert admission.pending == {DELEGATE.address: PRICE}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("user", DELEGATE.address, "bad-signature"),
        ("socket_id", 2, "bad-signature"),
        ("workload", "sleep", "workload-mismatch"),
        ("input_hash", content_hash(b"other"), "input-mismatch"),
        ("max_price", PRICE + 1, "bad-signature"),
        ("nonce", 8, "bad-signature"),
        ("deadline", NOW + 61, "bad-signature"),
    ],
)
def test_admit__one_field_changed_after_signing__refused_with_its_reason(field, value, reason):
    """The input and workload travel beside the order, so their changes are caught first; any
    other change leaves a signature that recovers to someone other than ``user``."""
    signed = order()
    changed = dataclasses.replace(signed, **{field: value})
    request = dataclasses.replace(request_of(signed), invocation=encode_request(changed))
    admission = Admission(DOMAIN, VIEW)
    with pytest.raises(InvocationRejected) as refused:
        admission.admit(request, NOW)
    assert refused.value.reason == reason
    assert admission.pending == {}


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: request_of(order(STRANGER), STRANGER), "socket-not-held"),
        (lambda: request_of(order(nonce=3)), "nonce-reused"),
        (lambda: request_of(order(deadline=NOW - 1)), "expired"),
        (
            lambda: request_of(order(), domain=InvocationDomain(1, DOMAIN.verifying_contract)),
            "bad-signature",
        ),
        (lambda: dataclasses.replace(request_of(order()), invocation=b""), "unsigned"),
        (
            lambda: dataclasses.replace(request_of(order()), invocation=b"\xa0"),
            "invocation-malformed",
        ),
        (lambda: dataclasses.replace(request_of(order()), payload=b"other"), "input-mismatch"),
        (lambda: dataclasses.replace(request_of(order()), invocation=b"\xff"), "cbor-indefinite"),
    ],
)
def test_admit__each_fault__its_reason_and_nothing_pending(make, reason):
    admission = Admission(DOMAIN, VIEW)
    with pytest.raises(InputRejected) as refused:
        admission.admit(make(), NOW)
    assert refused.value.reason == reason
    assert reason in CALLER_REASONS or reason.startswith("cbor-")
    assert admission.pending == {}


def test_admit__max_price_below_the_price__price_above_max():
    low = order_for(USER.address, SOCKET_ID, WORKLOAD, INPUT, PRICE - 1, nonce=7, deadline=NOW + 9)
    with pytest.raises(InvocationRejected, match="above max_price") as refused:
        Admission(DOMAIN, VIEW).admit(request_of(low), NOW)
    assert refused.value.reason == "price-above-max"


def test_admit__escrow_exhausted_by_pending_orders__refused_until_one_fails():
    admission = Admission(DOMAIN, VIEW)
    tickets = [admission.admit(request_of(order(nonce=n)), NOW) for n in (10, 11, 12)]
    with pytest.raises(InvocationRejected) as refused:
        admission.admit(request_of(order(nonce=13)), NOW)
    assert refused.value.reason == "escrow-exhausted"
    admission.failed(tickets[0])
    admission.admit(request_of(order(nonce=13)), NOW)
    assert admission.pending == {USER.address: 3 * PRICE}


def test_admit__nonce_admitted_once__second_send_refused_until_it_fails():
    admission = Admission(DOMAIN, VIEW)
    request = request_of(order(nonce=20))
    ticket = admission.admit(request, NOW)
    with pytest.raises(InvocationRejected) as refused:
        admission.admit(request, NOW)
    assert refused.value.reason == "nonce-reused"
    admission.failed(ticket)
    admission.admit(request, NOW)


def test_admit__nonce_forgotten_after_its_deadline__then_refused_as_expired():
    admission = Admission(DOMAIN, VIEW)
    request = request_of(order(nonce=21, deadline=NOW + 5))
    admission.admit(request, NOW)
    assert admission._nonces
    with pytest.raises(InvocationRejected) as refused:
        admission.admit(request, NOW + 6)
    assert refused.value.reason == "expired"
    assert not admission._nonces


def test_admit__over_the_signers_rate__rate_limited_and_others_unaffected():
    admission = Admission(DOMAIN, VIEW, AdmissionPolicy(rate_per_s=1.0, burst=2))
    admission.admit(request_of(order(nonce=30)), NOW)
    admission.admit(request_of(order(nonce=31)), NOW)
    with pytest.raises(InvocationRejected) as refused:
        admission.admit(request_of(order(nonce=32)), NOW)
    assert refused.value.reason == "rate-limited"
    admission.admit(request_of(order(DELEGATE, nonce=32), DELEGATE), NOW)
    admission.admit(request_of(order(nonce=32)), NOW + 1)


def test_admit__forged_order_in_a_users_name__spends_none_of_its_rate():
    admission = Admission(DOMAIN, VIEW, AdmissionPolicy(rate_per_s=1.0, burst=1))
    forged = dataclasses.replace(
        request_of(order(nonce=40)), signature=sign_order(STRANGER, order(nonce=40), DOMAIN)
    )
    with pytest.raises(InvocationRejected, match="signed by"):
        admission.admit(forged, NOW)
    admission.admit(request_of(order(nonce=40)), NOW)


def test_covered__a_commit_proves_spend__pending_released():
    admission = Admission(DOMAIN, VIEW)
    admission.admit(request_of(order(nonce=50)), NOW)
    admission.covered(USER.address, PRICE)
    assert admission.pending == {}


# ------------------------------------------------------------------ the node's receipt


def refused_record(request: Request, response: Response, view=VIEW) -> str:
    admission = Admission(DOMAIN, view)
    with pytest.raises(InvocationRejected) as refused:
        route(admission, request, response, view)
    assert admission.pending == {}  # nothing billed: released on refusal
    return refused.value.reason


def test_countersign__receipt_signed_by_another_key__bad_node_signature():
    request = request_of(order())
    honest = node_answer(request)
    receipt = decode_receipt(honest.receipt)
    forged = dataclasses.replace(
        honest, node_signature=sign_receipt(OTHER_NODE.private_key, receipt, DOMAIN)
    )
    assert refused_record(request, forged) == "bad-node-signature"
    with pytest.raises(InvocationRejected) as refused:
        verify_receipt(forged, order(), DOMAIN)
    assert refused.value.reason == "bad-node-signature"


def test_countersign__output_not_the_one_the_receipt_hashes__output_mismatch():
    request = request_of(order())
    lying = node_answer(request, output=b"what the node hashed")
    assert refused_record(request, lying) == "output-mismatch"
    with pytest.raises(InvocationRejected) as refused:
        verify_receipt(lying, order(), DOMAIN)
    assert refused.value.reason == "output-mismatch"


async def test_settle__receipt_not_cbor__refused_and_released():
    checks = InvocationChecks(DOMAIN, VIEW, ROUTER, clock=lambda: NOW)
    request = request_of(order())
    ticket = await checks.admit(request)
    garbage = dataclasses.replace(node_answer(request), receipt=b"\x18")
    with pytest.raises(InputRejected) as refused:
        await checks.settle(ticket, garbage, NODE.address)
    assert refused.value.reason == "cbor-truncated"
    assert checks.admission.pending == {}


def test_countersign__no_receipt__bad_node_signature():
    request = request_of(order())
    bare = dataclasses.replace(node_answer(request), receipt=b"", node_signature=b"")
    assert refused_record(request, bare) == "bad-node-signature"


def test_countersign__receipt_of_another_order__receipt_mismatch():
    request = request_of(order())
    other = node_answer(request_of(order(nonce=99)))
    assert refused_record(request, other) == "receipt-mismatch"


def test_countersign__receipt_from_a_node_not_sent_to__node_mismatch():
    request = request_of(order())
    assert refused_record(request, node_answer(request, key=OTHER_NODE)) == "node-mismatch"


def test_countersign__price_off_the_sockets_terms__price_off_terms():
    request = request_of(order())
    answer = node_answer(request)
    receipt = dataclasses.replace(decode_receipt(answer.receipt), price=PRICE - 1)
    cheap = dataclasses.replace(
        answer,
        receipt=encode_receipt(receipt),
        node_signature=sign_receipt(NODE.private_key, receipt, DOMAIN),
    )
    assert refused_record(request, cheap) == "price-off-terms"


def test_countersign__node_blacklisted_since_admission__node_blacklisted():
    request = request_of(order())
    answer = node_answer(request)
    nodes = {**VIEW.nodes, NODE.address: dataclasses.replace(SERVING, blacklisted=True)}
    blacklisted = dataclasses.replace(VIEW, nodes=nodes)
    admission = Admission(DOMAIN, VIEW)
    ticket = admission.admit(request, NOW)
    with pytest.raises(InvocationRejected) as refused:
        countersign(
            ticket,
            answer,
            node_address=NODE.address,
            router=ROUTER.address,
            router_key=ROUTER.private_key,
            domain=DOMAIN,
            view=blacklisted,
        )
    assert refused.value.reason == "node-blacklisted"


def test_verify_receipt__router_refused__invocation_failed_with_the_code():
    refused = Response(b"q" * 16, False, error="nonce-reused", message="already used")
    with pytest.raises(InvocationFailed) as failed:
        verify_receipt(refused, order(), DOMAIN)
    assert failed.value.code == "nonce-reused"


# ------------------------------------------------------------------ the node's side


def test_node_accept__no_serving_router__refused_before_work():
    with pytest.raises(InvocationRejected) as refused:
        receipts.accept(request_of(order()), DOMAIN, VIEW)
    assert refused.value.reason == "receipt-mismatch"


def test_node_sign__price_above_the_orders_max__refused():
    dear = MemoryChainView(
        sockets={SOCKET_ID: dataclasses.replace(SOCKET, price=2 * PRICE)}, nodes=VIEW.nodes
    )
    request = dataclasses.replace(request_of(order()), router=bytes.fromhex(ROUTER.address[2:]))
    accepted = receipts.accept(request, DOMAIN, dear)
    with pytest.raises(InvocationRejected) as refused:
        receipts.sign(accepted, INPUT, 1, NODE, DOMAIN, dear)
    assert refused.value.reason == "price-above-max"


def test_escrow_changed__spend_proven_since_last_read__no_longer_pending():
    checks = InvocationChecks(DOMAIN, VIEW, ROUTER, clock=lambda: NOW)
    checks.admission.admit(request_of(order(nonce=60)), NOW)
    checks.admission.admit(request_of(order(nonce=61)), NOW)
    checks.escrow_changed(USER.address, EscrowInfo(3 * PRICE, proven_spent=5 * PRICE))
    assert checks.admission.pending == {USER.address: 2 * PRICE}  # the first read only marks
    checks.escrow_changed(USER.address, EscrowInfo(3 * PRICE, proven_spent=6 * PRICE))
    assert checks.admission.pending == {USER.address: PRICE}
