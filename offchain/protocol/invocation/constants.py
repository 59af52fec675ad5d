"""Constants of the invocation protocol, with their units."""

from offchain.protocol.rewards import BPS, DEFAULT_ROUTER_SHARE_BPS

# The EIP-712 domain every invocation message is signed under. ``chainId`` and
# ``verifyingContract`` (the ComputeMarket) complete it; see ``InvocationDomain``.
DOMAIN_NAME = "EMC Invocation"
DOMAIN_VERSION = "1"

# The largest values of the signed integer fields, by their EIP-712 types.
MAX_UINT256 = 2**256 - 1
MAX_UINT64 = 2**64 - 1

# A workload id: 1 to 32 bytes (the socket's ``String[32]``) of printable ASCII without spaces,
# so a wallet shows the signer exactly the id the socket stores.
MAX_WORKLOAD_BYTES = 32
WORKLOAD_FIRST_CHAR = 0x21
WORKLOAD_LAST_CHAR = 0x7E

# Sizes, in bytes, of the fixed-size fields.
HASH_BYTES = 32
ADDRESS_BYTES = 20
SIGNATURE_BYTES = 65

# secp256k1's group order, and the largest ``s`` a signature may carry (EIP-2: only the low
# half, so each signer has one signature per digest and a record one encoding).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_LOW_S = SECP256K1_N // 2

# Who is paid what out of each invocation's price, in basis points of the price (BPS = 100 %),
# as GPUComputeReward defines them (``DEFAULT_ROUTER_SHARE_BPS``, ``ISSUER_SHARE_BPS``, ``BPS``).
# The router that routed the invocation: the default of the network's router share
# (GPUComputeReward's ``router_share_bps``, which governance may set up to 9,000).
ROUTER_SHARE_BPS = DEFAULT_ROUTER_SHARE_BPS
# The socket's issuer, when a node other than the issuer served an open socket (a constant).
ISSUER_SHARE_BPS = 1_000
# The serving node gets the rest of the price.
TOTAL_BPS = BPS
