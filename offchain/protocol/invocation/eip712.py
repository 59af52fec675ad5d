"""EIP-712 hashing, signing and recovery of invocation requests, receipts and records.

Digests are computed by hand (type hash, ``hashStruct``, the ``0x1901`` prefix) with the project's
keccak, and equal what eth-account's ``encode_typed_data`` hashes for the typed data that
``request_typed_data`` and its siblings return, so a request signed with any EIP-712 wallet
(``eth_signTypedData_v4``, ``Account.sign_typed_data``) verifies here.
"""

from functools import lru_cache

from offchain.crypto.hashing import keccak
from offchain.crypto.keys import InvalidSignature, recover_address, sign_hash
from offchain.protocol.invocation.constants import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    MAX_LOW_S,
    SIGNATURE_BYTES,
)
from offchain.protocol.invocation.invocation_errors import (
    BadNodeSignature,
    BadRouterSignature,
    BadSignature,
)
from offchain.protocol.invocation.types import (
    InvocationDomain,
    InvocationRecord,
    InvocationRequest,
    Receipt,
)

try:
    # libsecp256k1 directly: eth-keys' wrapping of the same call (validation, key objects, and
    # eth-utils' checksum at about 40 us) costs three times the recovery itself.
    from coincurve import PublicKey as _PublicKey
except ImportError:  # coincurve comes with libp2p; without it, eth-keys' slower path
    _PublicKey = None

DOMAIN_FIELDS = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)
REQUEST_FIELDS = (
    ("user", "address"),
    ("socket_id", "uint256"),
    ("workload", "string"),
    ("input_hash", "bytes32"),
    ("max_price", "uint256"),
    ("nonce", "uint256"),
    ("deadline", "uint64"),
)
RECEIPT_FIELDS = (
    ("request_hash", "bytes32"),
    ("output_hash", "bytes32"),
    ("units", "uint64"),
    ("price", "uint256"),
    ("worker", "address"),
    ("router", "address"),
)
RECORD_FIELDS = (
    ("request", "InvocationRequest"),
    ("user_signature", "bytes"),
    ("receipt", "Receipt"),
    ("node_signature", "bytes"),
)


def _type_string(name: str, fields: tuple[tuple[str, str], ...]) -> str:
    """Return ``name(type field,...)``, EIP-712's ``encodeType`` of one struct."""
    return name + "(" + ",".join(f"{kind} {field}" for field, kind in fields) + ")"


DOMAIN_TYPE = _type_string("EIP712Domain", DOMAIN_FIELDS)
REQUEST_TYPE = _type_string("InvocationRequest", REQUEST_FIELDS)
RECEIPT_TYPE = _type_string("Receipt", RECEIPT_FIELDS)
# A struct's encoding appends the structs it references, sorted by name.
RECORD_TYPE = _type_string("InvocationRecord", RECORD_FIELDS) + REQUEST_TYPE + RECEIPT_TYPE

DOMAIN_TYPEHASH = keccak(DOMAIN_TYPE.encode())
REQUEST_TYPEHASH = keccak(REQUEST_TYPE.encode())
RECEIPT_TYPEHASH = keccak(RECEIPT_TYPE.encode())
RECORD_TYPEHASH = keccak(RECORD_TYPE.encode())

_NAME_HASH = keccak(DOMAIN_NAME.encode())
_VERSION_HASH = keccak(DOMAIN_VERSION.encode())
_ADDRESS_PAD = bytes(12)


def _word(value: int) -> bytes:
    """Return the 32-byte big-endian word of an unsigned integer."""
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    """Return the 32-byte word of a 0x-prefixed hex address."""
    return _ADDRESS_PAD + bytes.fromhex(address[2:])


@lru_cache(maxsize=64)
def domain_separator(domain: InvocationDomain) -> bytes:
    """Return the EIP-712 domain separator of ``domain``."""
    return keccak(
        DOMAIN_TYPEHASH
        + _NAME_HASH
        + _VERSION_HASH
        + _word(domain.chain_id)
        + _address_word(domain.verifying_contract)
    )


def _typed_digest(domain: InvocationDomain, struct_hash: bytes) -> bytes:
    """Return ``keccak(0x1901 || domainSeparator || struct_hash)``."""
    return keccak(b"\x19\x01" + domain_separator(domain) + struct_hash)


def request_struct_hash(request: InvocationRequest) -> bytes:
    """Return EIP-712's ``hashStruct`` of ``request``."""
    return keccak(
        REQUEST_TYPEHASH
        + _address_word(request.user)
        + _word(request.socket_id)
        + keccak(request.workload.encode())
        + request.input_hash
        + _word(request.max_price)
        + _word(request.nonce)
        + _word(request.deadline)
    )


def receipt_struct_hash(receipt: Receipt) -> bytes:
    """Return EIP-712's ``hashStruct`` of ``receipt``."""
    return keccak(
        RECEIPT_TYPEHASH
        + receipt.request_hash
        + receipt.output_hash
        + _word(receipt.units)
        + _word(receipt.price)
        + _address_word(receipt.worker)
        + _address_word(receipt.router)
    )


def record_struct_hash(record: InvocationRecord) -> bytes:
    """Return EIP-712's ``hashStruct`` of ``record`` (all but the router's signature)."""
    return keccak(
        RECORD_TYPEHASH
        + request_struct_hash(record.request)
        + keccak(record.user_signature)
        + receipt_struct_hash(record.receipt)
        + keccak(record.node_signature)
    )


def request_digest(request: InvocationRequest, domain: InvocationDomain) -> bytes:
    """Return the digest the user signs: the request's hash in receipts and nonce records."""
    return _typed_digest(domain, request_struct_hash(request))


def receipt_digest(receipt: Receipt, domain: InvocationDomain) -> bytes:
    """Return the digest the node signs."""
    return _typed_digest(domain, receipt_struct_hash(receipt))


def record_digest(record: InvocationRecord, domain: InvocationDomain) -> bytes:
    """Return the digest the router countersigns: the record's id on the records topic."""
    return _typed_digest(domain, record_struct_hash(record))


# ----------------------------------------------------------------------------------------------
# Typed data, the form wallets and eth-account sign
# ----------------------------------------------------------------------------------------------


def _fields_json(fields: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"name": name, "type": kind} for name, kind in fields]


def _domain_json(domain: InvocationDomain) -> dict:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": domain.chain_id,
        "verifyingContract": domain.verifying_contract,
    }


def _request_message(request: InvocationRequest) -> dict:
    return {
        "user": request.user,
        "socket_id": request.socket_id,
        "workload": request.workload,
        "input_hash": "0x" + request.input_hash.hex(),
        "max_price": request.max_price,
        "nonce": request.nonce,
        "deadline": request.deadline,
    }


def _receipt_message(receipt: Receipt) -> dict:
    return {
        "request_hash": "0x" + receipt.request_hash.hex(),
        "output_hash": "0x" + receipt.output_hash.hex(),
        "units": receipt.units,
        "price": receipt.price,
        "worker": receipt.worker,
        "router": receipt.router,
    }


def request_typed_data(request: InvocationRequest, domain: InvocationDomain) -> dict:
    """Return the EIP-712 typed data of ``request`` (``eth_signTypedData_v4``'s argument)."""
    return {
        "types": {
            "EIP712Domain": _fields_json(DOMAIN_FIELDS),
            "InvocationRequest": _fields_json(REQUEST_FIELDS),
        },
        "primaryType": "InvocationRequest",
        "domain": _domain_json(domain),
        "message": _request_message(request),
    }


def receipt_typed_data(receipt: Receipt, domain: InvocationDomain) -> dict:
    """Return the EIP-712 typed data of ``receipt``."""
    return {
        "types": {
            "EIP712Domain": _fields_json(DOMAIN_FIELDS),
            "Receipt": _fields_json(RECEIPT_FIELDS),
        },
        "primaryType": "Receipt",
        "domain": _domain_json(domain),
        "message": _receipt_message(receipt),
    }


def record_typed_data(record: InvocationRecord, domain: InvocationDomain) -> dict:
    """Return the EIP-712 typed data of ``record`` (what the router countersigns)."""
    return {
        "types": {
            "EIP712Domain": _fields_json(DOMAIN_FIELDS),
            "InvocationRecord": _fields_json(RECORD_FIELDS),
            "InvocationRequest": _fields_json(REQUEST_FIELDS),
            "Receipt": _fields_json(RECEIPT_FIELDS),
        },
        "primaryType": "InvocationRecord",
        "domain": _domain_json(domain),
        "message": {
            "request": _request_message(record.request),
            "user_signature": "0x" + record.user_signature.hex(),
            "receipt": _receipt_message(record.receipt),
            "node_signature": "0x" + record.node_signature.hex(),
        },
    }


# ----------------------------------------------------------------------------------------------
# Signing and recovery
# ----------------------------------------------------------------------------------------------


def sign_request(private_key: bytes, request: InvocationRequest, domain: InvocationDomain) -> bytes:
    """Return the user's 65-byte signature (r || s || v) of ``request``."""
    return sign_hash(private_key, request_digest(request, domain))


def sign_receipt(private_key: bytes, receipt: Receipt, domain: InvocationDomain) -> bytes:
    """Return the node's 65-byte signature of ``receipt``."""
    return sign_hash(private_key, receipt_digest(receipt, domain))


def sign_record(private_key: bytes, record: InvocationRecord, domain: InvocationDomain) -> bytes:
    """Return the router's 65-byte countersignature of ``record``."""
    return sign_hash(private_key, record_digest(record, domain))


@lru_cache(maxsize=4_096)
def address_from_bytes(raw: bytes) -> str:
    """Return the EIP-55 checksummed form of a 20-byte address."""
    lower = raw.hex()
    nibbles = keccak(lower.encode()).hex()
    return "0x" + "".join(
        char.upper() if nibble in "89abcdef" else char
        for char, nibble in zip(lower, nibbles, strict=False)
    )


def recover_signer(digest: bytes, signature: bytes) -> str:
    """Return the address that signed ``digest``, or raise ``BadSignature``.

    Only low-``s`` signatures (EIP-2) count, so no signer has two signatures for one digest.
    """
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise BadSignature(f"a signature is {SIGNATURE_BYTES} bytes")
    if int.from_bytes(signature[32:64], "big") > MAX_LOW_S:
        raise BadSignature("signature s is in the high half")
    if _PublicKey is None:
        try:
            return recover_address(digest, signature)
        except InvalidSignature as exc:
            raise BadSignature(str(exc)) from None
    v = signature[64]
    if v not in (27, 28):
        raise BadSignature(f"bad recovery id {v}")
    try:
        public_key = _PublicKey.from_signature_and_message(
            bytes(signature[:64]) + bytes((v - 27,)), digest, hasher=None
        )
    except ValueError as exc:  # r or s out of range, or no point recovers
        raise BadSignature(str(exc)) from None
    return address_from_bytes(keccak(public_key.format(compressed=False)[1:])[-20:])


def recover_request_signer(
    request: InvocationRequest, signature: bytes, domain: InvocationDomain
) -> str:
    """Return the address that signed ``request`` under ``domain``, or raise ``BadSignature``."""
    return recover_signer(request_digest(request, domain), signature)


def recover_receipt_signer(receipt: Receipt, signature: bytes, domain: InvocationDomain) -> str:
    """Return the address that signed ``receipt``, or raise ``BadNodeSignature``."""
    try:
        return recover_signer(receipt_digest(receipt, domain), signature)
    except BadSignature as exc:
        raise BadNodeSignature(str(exc)) from None


def recover_record_signer(
    record: InvocationRecord, signature: bytes, domain: InvocationDomain
) -> str:
    """Return the address that countersigned ``record``, or raise ``BadRouterSignature``."""
    try:
        return recover_signer(record_digest(record, domain), signature)
    except BadSignature as exc:
        raise BadRouterSignature(str(exc)) from None
