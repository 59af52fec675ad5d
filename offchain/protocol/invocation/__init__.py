"""The invocation protocol: signed requests, node receipts, router-countersigned records.

Pure and I/O-free, shared by routers, nodes, validators, the gateway and the SDK:

- ``types``: the messages and the chain facts they are checked against;
- ``eip712``: their EIP-712 digests, typed data, signing and recovery;
- ``encoding``: their one canonical encoding (strict canonical CBOR maps);
- ``checks``: the checks, each raising a specific ``InvocationRejected``;
- ``rules``: which nodes may serve a socket and who is paid what out of its price;
- ``constants`` and ``errors``.

``docs/invocation.md`` describes the protocol.
"""

from offchain.protocol.invocation.checks import (
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
    escrow_headroom,
)
from offchain.protocol.invocation.eip712 import (
    domain_separator,
    receipt_digest,
    receipt_typed_data,
    record_digest,
    record_typed_data,
    recover_receipt_signer,
    recover_record_signer,
    recover_request_signer,
    request_digest,
    request_typed_data,
    sign_receipt,
    sign_record,
    sign_request,
)
from offchain.protocol.invocation.encoding import (
    decode_receipt,
    decode_record,
    decode_request,
    encode_receipt,
    encode_record,
    encode_request,
    receipt_from_map,
    receipt_to_map,
    record_from_map,
    record_to_map,
    request_from_map,
    request_to_map,
)
from offchain.protocol.invocation.rules import (
    admits,
    may_serve,
    needs_stake,
    price_split,
    socket_price,
    split_price,
)
from offchain.protocol.invocation.types import (
    ChainView,
    EscrowInfo,
    FollowingView,
    InvocationDomain,
    InvocationRecord,
    InvocationRequest,
    MemoryChainView,
    NodeInfo,
    PriceSplit,
    Receipt,
    SocketInfo,
)

__all__ = [
    "ChainView",
    "EscrowInfo",
    "FollowingView",
    "InvocationDomain",
    "InvocationRecord",
    "InvocationRequest",
    "MemoryChainView",
    "NodeInfo",
    "PriceSplit",
    "Receipt",
    "SocketInfo",
    "admits",
    "check_affordable",
    "check_escrow",
    "check_freshness",
    "check_node",
    "check_output",
    "check_price",
    "check_record",
    "check_request",
    "check_request_signature",
    "check_signatures",
    "check_socket",
    "content_hash",
    "decode_receipt",
    "decode_record",
    "decode_request",
    "domain_separator",
    "encode_receipt",
    "encode_record",
    "encode_request",
    "escrow_headroom",
    "may_serve",
    "needs_stake",
    "price_split",
    "receipt_digest",
    "receipt_from_map",
    "receipt_to_map",
    "receipt_typed_data",
    "record_digest",
    "record_from_map",
    "record_to_map",
    "record_typed_data",
    "recover_receipt_signer",
    "recover_record_signer",
    "recover_request_signer",
    "request_digest",
    "request_from_map",
    "request_to_map",
    "request_typed_data",
    "sign_receipt",
    "sign_record",
    "sign_request",
    "socket_price",
    "split_price",
]
