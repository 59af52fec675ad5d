"""The invocation protocol: EIP-712 signing as wallets do it, the record checks, the encoding."""

import dataclasses

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from offchain.crypto.hashing import keccak
from offchain.crypto.keys import InvalidSignature, recover_address
from offchain.protocol.canonical_cbor import dumps, loads
from offchain.protocol.errors import InputRejected
from offchain.protocol.invocation import (
    EscrowInfo,
    InvocationDomain,
    InvocationRecord,
    InvocationRequest,
    MemoryChainView,
    NodeInfo,
    Receipt,
    SocketInfo,
    check_affordable,
    check_escrow,
    check_freshness,
    check_node,
    check_output,
    check_price,
    check_record,
    check_request,
    check_request_signature,
    check_signatures,
    check_socket,
    content_hash,
    decode_receipt,
    decode_record,
    decode_request,
    eip712,
    encode_receipt,
    encode_record,
    encode_request,
    invocation_errors,
    receipt_digest,
    receipt_from_map,
    receipt_to_map,
    receipt_typed_data,
    record_digest,
    record_from_map,
    record_to_map,
    record_typed_data,
    recover_request_signer,
    request_digest,
    request_from_map,
    request_to_map,
    request_typed_data,
    sign_receipt,
    sign_record,
    sign_request,
    split_price,
)
from offchain.protocol.invocation.constants import SECP256K1_N
from tests.fuzzing import examples

USER = Account.from_key(b"\x01" * 32)
DELEGATE = Account.from_key(b"\x02" * 32)
STRANGER = Account.from_key(b"\x03" * 32)
NODE = Account.from_key(b"\x04" * 32)
OTHER_NODE = Account.from_key(b"\x05" * 32)
ROUTER = Account.from_key(b"\x06" * 32)

MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = InvocationDomain(chain_id=31337, verifying_contract=MARKET)
NOW = 1_800_000_000
PRICE = 10**15
WORKLOAD = "matmul-f32"
INPUT = b"input bytes"
OUTPUT = b"output bytes"
SOCKET_ID = 1

SOCKET = SocketInfo(
    holder=USER.address,
    workload=WORKLOAD,
    price=PRICE,
    issuer=NODE.address,
    expiry=NOW + 10_000,
    user=DELEGATE.address,
    user_expires=NOW + 100,
)
SERVING = NodeInfo(staked=True, blacklisted=False, workloads=frozenset({WORKLOAD}))
VIEW = MemoryChainView(
    sockets={SOCKET_ID: SOCKET},
    nodes={NODE.address: SERVING, OTHER_NODE.address: SERVING},
    escrows={USER.address: EscrowInfo(balance=10 * PRICE), DELEGATE.address: EscrowInfo(PRICE)},
    used_nonces=frozenset({(USER.address, 3)}),
)


def make_request(signer=USER, **changes) -> InvocationRequest:
    """Return a request of ``signer`` on SOCKET that passes every check, with ``changes``."""
    fields = {
        "user": signer.address,
        "socket_id": SOCKET_ID,
        "workload": WORKLOAD,
        "input_hash": content_hash(INPUT),
        "max_price": PRICE,
        "nonce": 7,
        "deadline": NOW + 60,
    }
    fields.update(changes)
    return InvocationRequest(**fields)


def make_record(
    request: InvocationRequest | None = None,
    signer=USER,
    node=NODE,
    node_key: bytes | None = None,
    router_key: bytes | None = None,
    domain: InvocationDomain = DOMAIN,
    **receipt_changes,
) -> InvocationRecord:
    """Return a record signed by ``signer``, ``node`` (or ``node_key``) and ROUTER (or
    ``router_key``), with ``receipt_changes`` applied before the node signs."""
    request = request or make_request(signer)
    fields = {
        "request_hash": request_digest(request, domain),
        "output_hash": content_hash(OUTPUT),
        "units": 12,
        "price": PRICE,
        "worker": node.address,
        "router": ROUTER.address,
    }
    fields.update(receipt_changes)
    receipt = Receipt(**fields)
    unsigned = InvocationRecord(
        request=request,
        user_signature=sign_request(signer.key, request, domain),
        receipt=receipt,
        node_signature=sign_receipt(node_key or node.key, receipt, domain),
        router_signature=b"",
    )
    router_signature = sign_record(router_key or ROUTER.key, unsigned, domain)
    return dataclasses.replace(unsigned, router_signature=router_signature)


def eth_account_hash(typed_data: dict) -> bytes:
    """Return the digest eth-account computes for ``typed_data``."""
    message = encode_typed_data(full_message=typed_data)
    return keccak(b"\x19" + message.version + message.header + message.body)


def with_socket(**changes) -> MemoryChainView:
    """Return VIEW with SOCKET changed."""
    socket = dataclasses.replace(SOCKET, **changes)
    return dataclasses.replace(VIEW, sockets={SOCKET_ID: socket})


def with_node(address: str, node: NodeInfo | None) -> MemoryChainView:
    """Return VIEW with ``address``'s registry entry replaced (None: removed)."""
    nodes = dict(VIEW.nodes)
    if node is None:
        del nodes[address]
    else:
        nodes[address] = node
    return dataclasses.replace(VIEW, nodes=nodes)


def with_escrow(user: str, escrow: EscrowInfo) -> MemoryChainView:
    """Return VIEW with ``user``'s escrow replaced."""
    return dataclasses.replace(VIEW, escrows={**VIEW.escrows, user: escrow})


# ----------------------------------------------------------------------------------------------
# EIP-712: the digests are eth-account's, a wallet's signature verifies
# ----------------------------------------------------------------------------------------------

uint256 = st.integers(0, 2**256 - 1)
uint64 = st.integers(0, 2**64 - 1)
hashes = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
workloads = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=32)


requests = st.builds(
    InvocationRequest,
    user=addresses,
    socket_id=uint256,
    workload=workloads,
    input_hash=hashes,
    max_price=uint256,
    nonce=uint256,
    deadline=uint64,
)
receipts = st.builds(
    Receipt,
    request_hash=hashes,
    output_hash=hashes,
    units=uint64,
    price=uint256,
    worker=addresses,
    router=addresses,
)
domains = st.builds(
    InvocationDomain,
    chain_id=uint256,
    verifying_contract=addresses,
)
signatures = st.binary(min_size=65, max_size=65)
records = st.builds(
    InvocationRecord,
    request=requests,
    user_signature=signatures,
    receipt=receipts,
    node_signature=signatures,
    router_signature=signatures,
)


@settings(max_examples=examples(100), deadline=None)
@given(request=requests, receipt=receipts, domain=domains)
def test_digests__equal_eth_account_encode_typed_data(request, receipt, domain):
    assert request_digest(request, domain) == eth_account_hash(request_typed_data(request, domain))
    assert receipt_digest(receipt, domain) == eth_account_hash(receipt_typed_data(receipt, domain))


@settings(max_examples=examples(50), deadline=None)
@given(record=records, domain=domains)
def test_record_digest__equals_eth_account_encode_typed_data(record, domain):
    assert record_digest(record, domain) == eth_account_hash(record_typed_data(record, domain))


def test_request__signed_with_eth_account_sign_typed_data__recovers_to_the_signer():
    request = make_request()
    signed = Account.sign_typed_data(USER.key, full_message=request_typed_data(request, DOMAIN))
    assert recover_request_signer(request, signed.signature, DOMAIN) == USER.address
    assert check_request_signature(request, bytes(signed.signature), DOMAIN) is request
    assert bytes(signed.signature) == sign_request(USER.key, request, DOMAIN)


@settings(max_examples=examples(100), deadline=None)
@given(raw=st.binary(min_size=20, max_size=20))
def test_address_from_bytes__is_eip55(raw):
    assert eip712.address_from_bytes(raw) == to_checksum_address(raw)


@settings(max_examples=examples(100), deadline=None)
@given(
    digest=hashes,
    r=st.integers(0, SECP256K1_N + 1),
    s=st.integers(0, SECP256K1_N // 2),
    v=st.sampled_from([27, 28]),
)
def test_recover_signer__agrees_with_eth_keys(digest, r, s, v):
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
    try:
        expected = recover_address(digest, signature)
    except InvalidSignature:
        with pytest.raises(invocation_errors.BadSignature):
            eip712.recover_signer(digest, signature)
    else:
        assert eip712.recover_signer(digest, signature) == expected


def test_recover_signer__without_coincurve__same_answers(monkeypatch):
    request = make_request()
    signature = sign_request(USER.key, request, DOMAIN)
    monkeypatch.setattr(eip712, "_PublicKey", None)
    assert recover_request_signer(request, signature, DOMAIN) == USER.address
    with pytest.raises(invocation_errors.BadSignature):
        recover_request_signer(request, signature[:64] + b"\x1d", DOMAIN)


CHANGED_FIELDS = {
    "user": DELEGATE.address,
    "socket_id": SOCKET_ID + 1,
    "workload": "matmul-f16",
    "input_hash": content_hash(b"other input"),
    "max_price": PRICE + 1,
    "nonce": 8,
    "deadline": NOW + 61,
}


@pytest.mark.parametrize("field", sorted(CHANGED_FIELDS))
def test_request__one_field_changed_after_signing__bad_signature(field):
    request = make_request()
    signed = Account.sign_typed_data(USER.key, full_message=request_typed_data(request, DOMAIN))
    changed = dataclasses.replace(request, **{field: CHANGED_FIELDS[field]})
    with pytest.raises(invocation_errors.BadSignature) as refused:
        check_request_signature(changed, bytes(signed.signature), DOMAIN)
    assert refused.value.reason == "bad-signature"


@pytest.mark.parametrize(
    "domain",
    [
        InvocationDomain(chain_id=1, verifying_contract=MARKET),
        InvocationDomain(chain_id=31337, verifying_contract=STRANGER.address),
    ],
    ids=["wrong-chain-id", "wrong-contract"],
)
def test_request__signed_for_another_domain__bad_signature(domain):
    request = make_request()
    signature = sign_request(USER.key, request, domain)
    with pytest.raises(invocation_errors.BadSignature):
        check_request_signature(request, signature, DOMAIN)
    assert check_request_signature(request, signature, domain) is request


def test_request__high_s_twin_of_a_valid_signature__bad_signature():
    request = make_request()
    signature = sign_request(USER.key, request, DOMAIN)
    s = int.from_bytes(signature[32:64], "big")
    # (r, n - s, flipped v) recovers to the same key: the malleable twin EIP-2 rules out.
    twin = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    with pytest.raises(invocation_errors.BadSignature, match="high half"):
        check_request_signature(request, twin, DOMAIN)


@pytest.mark.parametrize("signature", [b"", b"\x00" * 64, b"\x01" * 66, b"\x00" * 65])
def test_request__malformed_signature__bad_signature(signature):
    with pytest.raises(invocation_errors.BadSignature):
        check_request_signature(make_request(), signature, DOMAIN)


# ----------------------------------------------------------------------------------------------
# The record's signatures and output
# ----------------------------------------------------------------------------------------------


def test_check_signatures__all_valid__returns_the_record():
    record = make_record()
    assert check_signatures(record, DOMAIN) is record


def test_check_signatures__receipt_signed_by_another_key__forged_receipt():
    record = make_record(node_key=OTHER_NODE.key)
    with pytest.raises(invocation_errors.BadNodeSignature) as refused:
        check_signatures(record, DOMAIN)
    assert refused.value.reason == "bad-node-signature"


def test_check_signatures__receipt_changed_after_the_node_signed__forged_receipt():
    record = make_record()
    tampered = dataclasses.replace(record.receipt, price=PRICE - 1)
    with pytest.raises(invocation_errors.BadNodeSignature):
        check_signatures(dataclasses.replace(record, receipt=tampered), DOMAIN)


def test_check_signatures__receipt_for_another_request__receipt_mismatch():
    other = make_request(nonce=9)
    record = make_record(request_hash=request_digest(other, DOMAIN))
    with pytest.raises(invocation_errors.ReceiptMismatch):
        check_signatures(record, DOMAIN)


def test_check_signatures__countersigned_by_another_router__bad_router_signature():
    record = make_record(router_key=STRANGER.key)
    with pytest.raises(invocation_errors.BadRouterSignature) as refused:
        check_signatures(record, DOMAIN)
    assert refused.value.reason == "bad-router-signature"


def test_check_signatures__receipt_replaced_after_countersigning__bad_router_signature():
    record = make_record()
    # The node signs a second, valid receipt for the same request: the router countersigned
    # the first, so the record with the second one is not the router's.
    rewritten = dataclasses.replace(record.receipt, units=13)
    replaced = dataclasses.replace(
        record, receipt=rewritten, node_signature=sign_receipt(NODE.key, rewritten, DOMAIN)
    )
    with pytest.raises(invocation_errors.BadRouterSignature):
        check_signatures(replaced, DOMAIN)


def test_check_signatures__wrong_domain__bad_signature():
    record = make_record(domain=InvocationDomain(chain_id=1, verifying_contract=MARKET))
    with pytest.raises(invocation_errors.BadSignature) as refused:
        check_signatures(record, DOMAIN)
    assert refused.value.reason == "bad-signature"


def test_check_output__matching_bytes__returns_the_record():
    record = make_record()
    assert check_output(record, OUTPUT) is record


def test_check_output__bytes_not_hashing_to_the_receipt__output_mismatch():
    with pytest.raises(invocation_errors.OutputMismatch) as refused:
        check_output(make_record(), OUTPUT + b"!")
    assert refused.value.reason == "output-mismatch"


# ----------------------------------------------------------------------------------------------
# The socket: held or delegated, alive, the request's workload
# ----------------------------------------------------------------------------------------------


def test_check_socket__holder__passes():
    request = make_request(USER)
    assert check_socket(request, VIEW, NOW) is request


def test_check_socket__current_user__passes_until_its_use_expires():
    request = make_request(DELEGATE)
    assert check_socket(request, VIEW, SOCKET.user_expires - 1) is request
    with pytest.raises(invocation_errors.DelegateExpired) as refused:
        check_socket(request, VIEW, SOCKET.user_expires)
    assert refused.value.reason == "delegate-expired"


def test_check_socket__stranger__socket_not_held():
    with pytest.raises(invocation_errors.SocketNotHeld) as refused:
        check_socket(make_request(STRANGER), VIEW, NOW)
    assert refused.value.reason == "socket-not-held"


def test_check_socket__former_user_after_transfer_cleared_it__socket_not_held():
    view = with_socket(user=None, user_expires=0)
    with pytest.raises(invocation_errors.SocketNotHeld):
        check_socket(make_request(DELEGATE), view, NOW)


def test_check_socket__no_such_socket__socket_unknown():
    with pytest.raises(invocation_errors.UnknownSocket):
        check_socket(make_request(socket_id=2), VIEW, NOW)


def test_check_socket__past_its_expiry__socket_expired():
    assert check_socket(make_request(), VIEW, SOCKET.expiry - 1)
    with pytest.raises(invocation_errors.SocketExpired):
        check_socket(make_request(), VIEW, SOCKET.expiry)


def test_check_socket__other_workload__workload_mismatch():
    with pytest.raises(invocation_errors.WorkloadMismatch) as refused:
        check_socket(make_request(workload="matmul-f16"), VIEW, NOW)
    assert refused.value.reason == "workload-mismatch"


@pytest.mark.parametrize(
    ("issuer", "refusal"),
    [
        (None, invocation_errors.NodeUnregistered),
        (dataclasses.replace(SERVING, staked=False), invocation_errors.NodeUnstaked),
        (dataclasses.replace(SERVING, blacklisted=True), invocation_errors.NodeBlacklisted),
    ],
    ids=["unregistered", "unstaked", "blacklisted"],
)
def test_check_socket__issuer_not_an_active_node__refused(issuer, refusal):
    with pytest.raises(refusal):
        check_socket(make_request(), with_node(NODE.address, issuer), NOW)


# ----------------------------------------------------------------------------------------------
# Nonce and deadline
# ----------------------------------------------------------------------------------------------


def test_check_freshness__deadline_now__passes():
    request = make_request(deadline=NOW)
    assert check_freshness(request, VIEW, NOW) is request


def test_check_freshness__deadline_passed__expired():
    with pytest.raises(invocation_errors.DeadlineExpired) as refused:
        check_freshness(make_request(deadline=NOW - 1), VIEW, NOW)
    assert refused.value.reason == "expired"


def test_check_freshness__nonce_used__nonce_reused():
    with pytest.raises(invocation_errors.NonceReused) as refused:
        check_freshness(make_request(nonce=3), VIEW, NOW)
    assert refused.value.reason == "nonce-reused"


def test_check_freshness__nonce_used_by_another_user__passes():
    request = make_request(DELEGATE, nonce=3)
    assert check_freshness(request, VIEW, NOW) is request


# ----------------------------------------------------------------------------------------------
# Price and escrow
# ----------------------------------------------------------------------------------------------


def test_check_price__price_equal_to_max_and_to_the_socket_price__passes():
    record = make_record()
    assert check_price(record, VIEW) is record


def test_check_price__max_price_below_the_price__price_above_max():
    record = make_record(make_request(max_price=PRICE - 1))
    with pytest.raises(invocation_errors.PriceAboveMax) as refused:
        check_price(record, VIEW)
    assert refused.value.reason == "price-above-max"


@pytest.mark.parametrize("price", [PRICE - 1, PRICE + 1])
def test_check_price__price_off_the_socket_terms__price_off_terms(price):
    record = make_record(make_request(max_price=2 * PRICE), price=price)
    with pytest.raises(invocation_errors.PriceOffTerms) as refused:
        check_price(record, VIEW)
    assert refused.value.reason == "price-off-terms"


def test_check_affordable__socket_price_above_max__price_above_max():
    request = make_request(max_price=PRICE)
    assert check_affordable(request, VIEW, pending=0) is request
    with pytest.raises(invocation_errors.PriceAboveMax):
        check_affordable(make_request(max_price=PRICE - 1), VIEW, pending=0)


def test_check_escrow__headroom_exactly_the_price__passes():
    record = make_record()
    assert check_escrow(record, VIEW, pending=9 * PRICE) is record


def test_check_escrow__pending_spend_leaves_less_than_the_price__escrow_exhausted():
    with pytest.raises(invocation_errors.EscrowExhausted) as refused:
        check_escrow(make_record(), VIEW, pending=9 * PRICE + 1)
    assert refused.value.reason == "escrow-exhausted"


@pytest.mark.parametrize(
    "escrow",
    [
        EscrowInfo(balance=10 * PRICE, applied_spent=PRICE, proven_spent=PRICE + 1),
        EscrowInfo(balance=10 * PRICE, withdrawal_requested=1),
    ],
    ids=["proven-spend-not-yet-applied", "withdrawal-requested"],
)
def test_check_escrow__unapplied_spend_or_withdrawal_counts__escrow_exhausted(escrow):
    view = with_escrow(USER.address, escrow)
    with pytest.raises(invocation_errors.EscrowExhausted):
        check_escrow(make_record(), view, pending=9 * PRICE)
    assert check_escrow(make_record(), view, pending=8 * PRICE)


def test_check_affordable__never_deposited__escrow_exhausted():
    with pytest.raises(invocation_errors.EscrowExhausted):
        check_affordable(make_request(STRANGER), VIEW, pending=0)


# ----------------------------------------------------------------------------------------------
# The serving node
# ----------------------------------------------------------------------------------------------


def test_check_node__issuer_serves_its_socket__passes():
    record = make_record()
    assert check_node(record, VIEW) is record


def test_check_node__unregistered__node_unregistered():
    with pytest.raises(invocation_errors.NodeUnregistered) as refused:
        check_node(make_record(node=STRANGER), with_socket(open_serving=True))
    assert refused.value.reason == "node-unregistered"


def test_check_node__blacklisted__node_blacklisted():
    view = with_node(NODE.address, dataclasses.replace(SERVING, blacklisted=True))
    with pytest.raises(invocation_errors.NodeBlacklisted) as refused:
        check_node(make_record(), view)
    assert refused.value.reason == "node-blacklisted"


def test_check_node__unstaked_where_the_socket_requires_stake__node_unstaked():
    view = with_socket(open_serving=True, stake_required=True)
    view = dataclasses.replace(
        view, nodes={**view.nodes, OTHER_NODE.address: dataclasses.replace(SERVING, staked=False)}
    )
    with pytest.raises(invocation_errors.NodeUnstaked) as refused:
        check_node(make_record(node=OTHER_NODE), view)
    assert refused.value.reason == "node-unstaked"
    relaxed = dataclasses.replace(
        view,
        sockets={SOCKET_ID: dataclasses.replace(SOCKET, open_serving=True, stake_required=False)},
    )
    assert check_node(make_record(node=OTHER_NODE), relaxed)


def test_check_node__another_node_on_an_issuer_only_socket__node_not_allowed():
    with pytest.raises(invocation_errors.NodeNotAllowed) as refused:
        check_node(make_record(node=OTHER_NODE), VIEW)
    assert refused.value.reason == "node-not-allowed"
    assert check_node(make_record(node=OTHER_NODE), with_socket(open_serving=True))


def test_check_node__open_socket_but_node_lacks_the_workload__node_not_allowed():
    view = with_socket(open_serving=True)
    view = dataclasses.replace(
        view,
        nodes={
            **view.nodes,
            OTHER_NODE.address: dataclasses.replace(SERVING, workloads=frozenset()),
        },
    )
    with pytest.raises(invocation_errors.NodeNotAllowed):
        check_node(make_record(node=OTHER_NODE), view)


# ----------------------------------------------------------------------------------------------
# All checks together
# ----------------------------------------------------------------------------------------------


def test_check_request__valid__returns_the_request():
    request = make_request(DELEGATE)
    signature = sign_request(DELEGATE.key, request, DOMAIN)
    assert check_request(request, signature, DOMAIN, VIEW, NOW, pending=0) is request


def test_check_record__valid__returns_the_record():
    record = make_record()
    assert check_record(record, DOMAIN, VIEW, NOW, pending=0, output=OUTPUT) is record


OTHER_DOMAIN = InvocationDomain(chain_id=1, verifying_contract=MARKET)
OPEN_SOCKET = with_socket(open_serving=True)
# (record, view, now, pending spend, the reason check_record gives), one case per fault.
RECORD_FAULTS = [
    (make_record(domain=OTHER_DOMAIN), VIEW, NOW, 0, "bad-signature"),
    (make_record(node_key=OTHER_NODE.key), VIEW, NOW, 0, "bad-node-signature"),
    (make_record(router_key=STRANGER.key), VIEW, NOW, 0, "bad-router-signature"),
    (make_record(request_hash=bytes(32)), VIEW, NOW, 0, "receipt-mismatch"),
    (make_record(make_request(socket_id=2)), VIEW, NOW, 0, "socket-unknown"),
    (make_record(), VIEW, SOCKET.expiry, 0, "socket-expired"),
    (make_record(make_request(STRANGER), signer=STRANGER), VIEW, NOW, 0, "socket-not-held"),
    (make_record(make_request(DELEGATE), signer=DELEGATE), VIEW, NOW + 100, 0, "delegate-expired"),
    (make_record(make_request(workload="matmul-f16")), VIEW, NOW, 0, "workload-mismatch"),
    (make_record(make_request(nonce=3)), VIEW, NOW, 0, "nonce-reused"),
    (make_record(), VIEW, NOW + 61, 0, "expired"),
    (make_record(make_request(max_price=PRICE - 1)), VIEW, NOW, 0, "price-above-max"),
    (
        make_record(make_request(max_price=2 * PRICE), price=2 * PRICE),
        VIEW,
        NOW,
        0,
        "price-off-terms",
    ),
    (make_record(), VIEW, NOW, 9 * PRICE + 1, "escrow-exhausted"),
    (make_record(node=STRANGER), OPEN_SOCKET, NOW, 0, "node-unregistered"),
    (make_record(node=OTHER_NODE), VIEW, NOW, 0, "node-not-allowed"),
    (
        make_record(node=OTHER_NODE),
        dataclasses.replace(
            OPEN_SOCKET,
            nodes={**VIEW.nodes, OTHER_NODE.address: dataclasses.replace(SERVING, staked=False)},
        ),
        NOW,
        0,
        "node-unstaked",
    ),
    (
        make_record(node=OTHER_NODE),
        dataclasses.replace(
            OPEN_SOCKET,
            nodes={
                **VIEW.nodes,
                OTHER_NODE.address: dataclasses.replace(SERVING, blacklisted=True),
            },
        ),
        NOW,
        0,
        "node-blacklisted",
    ),
]


@pytest.mark.parametrize(
    ("record", "view", "now", "pending", "refusal"),
    [pytest.param(*case, id=case[-1]) for case in RECORD_FAULTS],
)
def test_check_record__each_fault__its_reason(record, view, now, pending, refusal):
    with pytest.raises(invocation_errors.InvocationRejected) as refused:
        check_record(record, DOMAIN, view, now, pending, output=OUTPUT)
    assert refused.value.reason == refusal


def test_check_record__output_not_matching__output_mismatch():
    with pytest.raises(invocation_errors.OutputMismatch):
        check_record(make_record(), DOMAIN, VIEW, NOW, pending=0, output=b"forged")


# ----------------------------------------------------------------------------------------------
# Who is paid what
# ----------------------------------------------------------------------------------------------


def test_split_price__issuer_serves__router_ten_percent_node_the_rest():
    split = split_price(1_000, SOCKET, NODE.address)
    assert (split.node, split.router, split.issuer) == (900, 100, 0)


def test_split_price__another_node_serves_an_open_socket__issuer_ten_percent():
    split = split_price(1_009, SOCKET, OTHER_NODE.address)
    assert (split.node, split.router, split.issuer) == (809, 100, 100)
    assert split.node + split.router + split.issuer == 1_009


# ----------------------------------------------------------------------------------------------
# The canonical encoding
# ----------------------------------------------------------------------------------------------


def test_encoding__record_round_trips_and_is_canonical():
    record = make_record()
    data = encode_record(record)
    assert decode_record(data) == record
    assert dumps(loads(data)) == data
    assert decode_request(encode_request(record.request)) == record.request
    assert decode_receipt(encode_receipt(record.receipt)) == record.receipt


@settings(max_examples=examples(100), deadline=None)
@given(record=records)
def test_encoding__any_record__round_trips(record):
    assert record_from_map(record_to_map(record)) == record
    assert decode_record(encode_record(record)) == record


def test_encoding__uint256_is_minimal_big_endian_bytes():
    mapped = request_to_map(make_request(socket_id=0, nonce=256, max_price=2**256 - 1))
    assert mapped["socket_id"] == b""
    assert mapped["nonce"] == b"\x01\x00"
    assert mapped["max_price"] == b"\xff" * 32


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nonce", b"\x00\x07"),
        ("max_price", b"\x01" * 33),
        ("socket_id", 1),
        ("deadline", 2**64),
        ("deadline", -1),
        ("deadline", True),
        ("workload", ""),
        ("workload", "x" * 33),
        ("workload", "matmul f32"),
        ("workload", "matmul-é"),
        ("user", b"\x01" * 19),
        ("input_hash", b"\x01" * 31),
        ("input_hash", "0x" + "11" * 32),
    ],
)
def test_request_from_map__bad_field__malformed(field, value):
    mapped = request_to_map(make_request())
    mapped[field] = value
    with pytest.raises(invocation_errors.MalformedInvocation) as refused:
        request_from_map(mapped)
    assert refused.value.reason == "invocation-malformed"


def test_from_map__missing_or_unknown_key__malformed():
    mapped = receipt_to_map(make_record().receipt)
    with pytest.raises(invocation_errors.MalformedInvocation):
        receipt_from_map({**mapped, "extra": 1})
    del mapped["units"]
    with pytest.raises(invocation_errors.MalformedInvocation):
        receipt_from_map(mapped)
    with pytest.raises(invocation_errors.MalformedInvocation):
        record_from_map([])


def test_decode__oversized_or_nested_too_deep__refused():
    with pytest.raises(invocation_errors.MalformedInvocation):
        decode_record(b"\xa0" + b"\x00" * 4_096)
    nested = dumps({"request": {"user": {"deeper": {}}}})
    with pytest.raises(InputRejected) as refused:
        decode_record(nested)
    assert refused.value.reason == "cbor-too-deep"


def test_errors__every_reason_is_an_input_rejected_with_its_own_tag():
    classes = [
        value
        for value in vars(invocation_errors).values()
        if isinstance(value, type) and issubclass(value, invocation_errors.InvocationRejected)
    ]
    assert all(issubclass(cls, InputRejected) for cls in classes)
    reasons = [cls.reason for cls in classes]
    assert len(reasons) == len(set(reasons)) == len(classes) >= 20


# ----------------------------------------------------------------------------------------------
# Fuzz: whatever arrives, decoding refuses it with an InputRejected or returns a valid value
# ----------------------------------------------------------------------------------------------

cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=16), children, max_size=8)
    ),
    max_leaves=20,
)


def _near(mapped: dict) -> st.SearchStrategy:
    """Return maps like ``mapped`` with one key's value replaced, dropped or added."""
    keys = sorted(mapped)
    replaced = st.tuples(st.sampled_from(keys), cbor_values).map(
        lambda change: {**mapped, change[0]: change[1]}
    )
    dropped = st.sampled_from(keys).map(lambda key: {k: v for k, v in mapped.items() if k != key})
    added = st.tuples(st.text(max_size=12), cbor_values).map(
        lambda change: {**mapped, change[0]: change[1]}
    )
    return replaced | dropped | added


VALID_RECORD = make_record()
VALID_MAPS = {
    "request": request_to_map(VALID_RECORD.request),
    "receipt": receipt_to_map(VALID_RECORD.receipt),
    "record": record_to_map(VALID_RECORD),
}
FROM_MAP = {
    "request": (request_from_map, request_to_map),
    "receipt": (receipt_from_map, receipt_to_map),
    "record": (record_from_map, record_to_map),
}
DECODE = {
    "request": (decode_request, encode_request),
    "receipt": (decode_receipt, encode_receipt),
    "record": (decode_record, encode_record),
}


def _variants(kind: str) -> st.SearchStrategy:
    """Return near-valid maps of ``kind``; for a record, also with its request or receipt near."""
    near = _near(VALID_MAPS[kind])
    if kind != "record":
        return near
    record = VALID_MAPS["record"]
    inner_request = _near(VALID_MAPS["request"]).map(lambda value: {**record, "request": value})
    inner_receipt = _near(VALID_MAPS["receipt"]).map(lambda value: {**record, "receipt": value})
    return near | inner_request | inner_receipt


def _refused_or_exact(decode, encode, value) -> None:
    """Check that ``decode`` refuses ``value`` with an InputRejected, or that ``value`` is the
    one encoding of what it returns."""
    try:
        decoded = decode(value)
    except InputRejected:
        return
    assert encode(decoded) == value


@pytest.mark.parametrize("kind", sorted(FROM_MAP))
@settings(max_examples=examples(200), deadline=None)
@given(data=st.data())
def test_fuzz_from_map__only_input_rejected(kind, data):
    value = data.draw(cbor_values | _variants(kind))
    _refused_or_exact(*FROM_MAP[kind], value)


@pytest.mark.parametrize("kind", sorted(DECODE))
@settings(max_examples=examples(200), deadline=None)
@given(data=st.data())
def test_fuzz_decode__only_input_rejected(kind, data):
    encoded = dumps(VALID_MAPS[kind])
    position = data.draw(st.integers(0, len(encoded) - 1))
    mutated = data.draw(
        st.binary(max_size=300)
        | st.just(encoded[:position])
        | st.integers(0, 255).map(
            lambda byte: encoded[:position] + bytes([byte]) + encoded[position + 1 :]
        )
        | _variants(kind).map(dumps)
    )
    _refused_or_exact(*DECODE[kind], mutated)


def test_record_faults__cover_every_check_reason():
    # Every reason a check raises has a case above; decoding's and the base's are elsewhere.
    reasons = {
        cls.reason
        for cls in vars(invocation_errors).values()
        if isinstance(cls, type) and issubclass(cls, invocation_errors.InvocationRejected)
    }
    covered = {case[-1] for case in RECORD_FAULTS}
    # The router's and node's own refusals of a request are tested with them
    # (tests/offchain/routers/test_invocation_flow.py).
    on_the_wire = {"unsigned", "input-mismatch", "rate-limited", "node-mismatch"}
    assert reasons - covered - on_the_wire == {
        "invocation-rejected",
        "invocation-malformed",
        "output-mismatch",
    }
