"""The invocation messages and the chain facts they are checked against: plain records.

Addresses are checksummed strings, hashes are 32-byte ``bytes``, amounts are EMC wei and times
are Unix seconds.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class InvocationDomain:
    """The EIP-712 domain: the chain and the ComputeMarket that escrows the payment."""

    chain_id: int
    verifying_contract: str


@dataclass(frozen=True)
class InvocationRequest:
    """A user's signed order to run one invocation on a socket.

    ``user`` is the signer (the socket's holder or its current user): it is part of the signed
    struct, so a signature that recovers to anyone else is refused as a bad signature, and two
    signers' identical orders never share a request hash.
    """

    user: str
    socket_id: int
    workload: str
    input_hash: bytes
    max_price: int
    nonce: int
    deadline: int


@dataclass(frozen=True)
class Receipt:
    """A node's signed account of one invocation it served."""

    request_hash: bytes
    output_hash: bytes
    units: int
    price: int
    worker: str
    router: str


@dataclass(frozen=True)
class InvocationRecord:
    """A request and its receipt, signed by the user and the node, countersigned by the router."""

    request: InvocationRequest
    user_signature: bytes
    receipt: Receipt
    node_signature: bytes
    router_signature: bytes


@dataclass(frozen=True)
class SocketInfo:
    """What a socket grants, as ComputeSocket stores it, with its holder and ERC-4907 user.

    ``issuer`` is the node (or pool operator) that minted the socket. The serving terms
    (ComputeSocket's ``serving_terms``, fixed at mint): ``open_serving`` lets any
    registered node that serves the workload serve the socket; otherwise only the issuer does.
    ``stake_required`` makes a serving node other than the issuer need an active compute stake
    (the issuer always needs one: a socket whose issuer is inactive serves no one).
    """

    holder: str
    workload: str
    price: int
    issuer: str
    expiry: int
    user: str | None = None
    user_expires: int = 0
    open_serving: bool = False
    stake_required: bool = True


@dataclass(frozen=True)
class NodeInfo:
    """A node's registry entry: whether its compute stake is active, its flag and workloads."""

    staked: bool
    blacklisted: bool
    workloads: frozenset[str]


@dataclass(frozen=True)
class EscrowInfo:
    """A user's escrow in ComputeMarket and the spending proven against it.

    ``balance`` is the market's ``escrow`` (deposits less applied spending), ``applied_spent``
    its ``spent_settled``, ``proven_spent`` the cumulative spent in the latest billing root
    (applied or not) and ``withdrawal_requested`` the amount the user asked to withdraw, which
    validators no longer bill against.
    """

    balance: int
    applied_spent: int = 0
    proven_spent: int = 0
    withdrawal_requested: int = 0


@dataclass(frozen=True)
class PriceSplit:
    """Who is paid what out of one price: the node, the router and the socket's issuer."""

    node: int
    router: int
    issuer: int


class ChainView(Protocol):
    """The chain facts the checks read: cached by routers, authoritative for validators."""

    def socket(self, socket_id: int) -> SocketInfo | None:
        """Return socket ``socket_id``, or None when it does not exist."""

    def node(self, address: str) -> NodeInfo | None:
        """Return the registry entry of ``address``, or None when it has none."""

    def escrow(self, user: str) -> EscrowInfo:
        """Return ``user``'s escrow (all zero for an account that never deposited)."""

    def nonce_used(self, user: str, nonce: int) -> bool:
        """Return whether ``user`` has already used ``nonce``."""


@runtime_checkable
class FollowingView(Protocol):
    """A ``ChainView`` that reads the chain in the background and can be waited on, bounded.

    ``offchain/chain/market_view.py``'s: what a request needs is read before it is checked.
    """

    async def ready_for(self, socket_id: int, user: str, timeout_s: float) -> bool:
        """Wait until the socket, its issuer and ``user``'s escrow are read; return whether."""

    async def ready(self, keys: Sequence[Any], timeout_s: float) -> bool:
        """Wait until every key is read; return whether all were."""


@dataclass(frozen=True)
class MemoryChainView:
    """A ``ChainView`` over plain dictionaries, for tests and simulations."""

    sockets: Mapping[int, SocketInfo] = field(default_factory=dict)
    nodes: Mapping[str, NodeInfo] = field(default_factory=dict)
    escrows: Mapping[str, EscrowInfo] = field(default_factory=dict)
    used_nonces: frozenset[tuple[str, int]] = frozenset()

    def socket(self, socket_id: int) -> SocketInfo | None:
        """Return socket ``socket_id``, or None when it does not exist."""
        return self.sockets.get(socket_id)

    def node(self, address: str) -> NodeInfo | None:
        """Return the registry entry of ``address``, or None when it has none."""
        return self.nodes.get(address)

    def escrow(self, user: str) -> EscrowInfo:
        """Return ``user``'s escrow (all zero for an account that never deposited)."""
        return self.escrows.get(user, EscrowInfo(balance=0))

    def nonce_used(self, user: str, nonce: int) -> bool:
        """Return whether ``user`` has already used ``nonce``."""
        return (user, nonce) in self.used_nonces
