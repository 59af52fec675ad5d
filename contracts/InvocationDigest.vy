# pragma version ~=0.4.3
"""
@title Invocation Digest
@custom:contract-name InvocationDigest
@license GNU Affero General Public License v3.0 only
@notice Computes the EIP-712 digests of invocation requests and receipts
        (`offchain/protocol/invocation`) under the domain that routers and
        validators check them in: name "EMC Invocation", version "1", this
        chain's id and the ComputeMarket as verifying contract. An
        integrator signs a request with any EIP-712 wallet and compares its
        digest with `request_digest` to know the network will accept the
        signature. It holds no state but the market's address.
@dev snekmate's `eip712_domain_separator` module is not used: its domain
     names the contract that includes it (`self`), and this domain names
     the market. The `0x1901` wrapping is snekmate's `message_hash_utils`.
"""


from snekmate.utils import message_hash_utils


# @dev The signing domain's name and version (`constants.py` off-chain).
DOMAIN_NAME: constant(String[14]) = "EMC Invocation"
DOMAIN_VERSION: constant(String[1]) = "1"


# @dev EIP-712 type hashes; the type strings are `eip712.py`'s off-chain.
_DOMAIN_TYPE_HASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_REQUEST_TYPE_HASH: constant(bytes32) = keccak256(
    "InvocationRequest(address user,uint256 socket_id,string workload,bytes32 input_hash,uint256 max_price,uint256 nonce,uint64 deadline)"
)
_RECEIPT_TYPE_HASH: constant(bytes32) = keccak256(
    "Receipt(bytes32 request_hash,bytes32 output_hash,uint64 units,uint256 price,address worker,address router)"
)


# @dev The ComputeMarket: the domain's verifying contract.
market: public(immutable(address))


@deploy
def __init__(market_: address):
    """
    @param market_ The ComputeMarket whose escrow pays for invocations.
    """
    market = market_


@external
@view
def domain_separator() -> bytes32:
    """
    @notice The EIP-712 domain separator of invocation messages on this
            chain.
    @return bytes32 The domain separator.
    """
    return self._domain_separator()


@external
@view
def request_digest(
    user: address,
    socket_id: uint256,
    workload: String[32],
    input_hash: bytes32,
    max_price: uint256,
    nonce: uint256,
    deadline: uint64,
) -> bytes32:
    """
    @notice The digest a user signs for an invocation request; receipts
            carry it as their `request_hash`.
    @param user The signer: the socket's holder or its current user.
    @param socket_id The socket invoked.
    @param workload The socket's workload id.
    @param input_hash The keccak-256 of the input bytes.
    @param max_price The most the user pays, in EMC wei.
    @param nonce The user's nonce for this request.
    @param deadline The last second (Unix time) the request may be served.
    @return bytes32 The EIP-712 digest.
    """
    struct_hash: bytes32 = keccak256(
        abi_encode(
            _REQUEST_TYPE_HASH,
            user,
            socket_id,
            keccak256(workload),
            input_hash,
            max_price,
            nonce,
            deadline,
        )
    )
    return message_hash_utils._to_typed_data_hash(self._domain_separator(), struct_hash)


@external
@view
def receipt_digest(
    request_hash: bytes32,
    output_hash: bytes32,
    units: uint64,
    price: uint256,
    worker: address,
    router: address,
) -> bytes32:
    """
    @notice The digest a compute node signs for the receipt of one
            invocation.
    @param request_hash The request's digest (`request_digest`).
    @param output_hash The keccak-256 of the output bytes.
    @param units The units of work the invocation took.
    @param price The price charged, in EMC wei.
    @param worker The serving node.
    @param router The router that routed the request.
    @return bytes32 The EIP-712 digest.
    """
    struct_hash: bytes32 = keccak256(
        abi_encode(_RECEIPT_TYPE_HASH, request_hash, output_hash, units, price, worker, router)
    )
    return message_hash_utils._to_typed_data_hash(self._domain_separator(), struct_hash)


@internal
@view
def _domain_separator() -> bytes32:
    """
    @dev Computed on each call from `chain.id`, so a fork's digests are
         its own.
    @return bytes32 The domain separator.
    """
    return keccak256(
        abi_encode(
            _DOMAIN_TYPE_HASH,
            keccak256(DOMAIN_NAME),
            keccak256(DOMAIN_VERSION),
            chain.id,
            market,
        )
    )
