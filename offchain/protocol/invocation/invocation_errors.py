"""Why an invocation message is refused: one exception per reason, all ``InputRejected``.

The ``reason`` tags are the error codes routers return to callers and validators log.
"""

from offchain.protocol.errors import InputRejected


class InvocationRejected(InputRejected):
    """An invocation request, receipt or record that must be refused."""

    reason = "invocation-rejected"


class MalformedInvocation(InvocationRejected):
    """A map or encoding that is not a well-formed request, receipt or record."""

    reason = "invocation-malformed"


class BadSignature(InvocationRejected):
    """The user's signature does not recover to the request's ``user`` under this domain."""

    reason = "bad-signature"


class BadNodeSignature(BadSignature):
    """The node's signature does not recover to the receipt's ``worker`` (a forged receipt)."""

    reason = "bad-node-signature"


class BadRouterSignature(BadSignature):
    """The router's countersignature does not recover to the receipt's ``router``."""

    reason = "bad-router-signature"


class ReceiptMismatch(InvocationRejected):
    """The receipt's ``request_hash`` is not the digest of the record's request."""

    reason = "receipt-mismatch"


class OutputMismatch(InvocationRejected):
    """The output bytes do not hash to the receipt's ``output_hash``."""

    reason = "output-mismatch"


class UnknownSocket(InvocationRejected):
    """No socket has the request's id (never minted, or burned)."""

    reason = "socket-unknown"


class SocketExpired(InvocationRejected):
    """The socket's own expiry has passed."""

    reason = "socket-expired"


class SocketNotHeld(InvocationRejected):
    """The signer neither holds the socket nor is its user."""

    reason = "socket-not-held"


class DelegateExpired(SocketNotHeld):
    """The signer was the socket's user, but that use has expired."""

    reason = "delegate-expired"


class WorkloadMismatch(InvocationRejected):
    """The request names a workload other than the socket's."""

    reason = "workload-mismatch"


class NonceReused(InvocationRejected):
    """The signer already used the request's nonce."""

    reason = "nonce-reused"


class DeadlineExpired(InvocationRejected):
    """The request's deadline has passed."""

    reason = "expired"


class PriceAboveMax(InvocationRejected):
    """The receipt's price exceeds the request's ``max_price``."""

    reason = "price-above-max"


class PriceOffTerms(InvocationRejected):
    """The receipt's price is not the price the socket's terms set."""

    reason = "price-off-terms"


class EscrowExhausted(InvocationRejected):
    """The user's escrow, less proven and pending spend, cannot pay the price."""

    reason = "escrow-exhausted"


class NodeUnregistered(InvocationRejected):
    """The serving node has no entry in the node registry."""

    reason = "node-unregistered"


class NodeUnstaked(InvocationRejected):
    """The socket requires a staked node (or an active issuer) and it is not staked."""

    reason = "node-unstaked"


class NodeBlacklisted(InvocationRejected):
    """The serving node (or the socket's issuer) is blacklisted."""

    reason = "node-blacklisted"


class NodeNotAllowed(InvocationRejected):
    """The socket's terms do not let this node serve it (not the issuer, or not its workload)."""

    reason = "node-not-allowed"


class Unsigned(InvocationRejected):
    """A request that carries no signed order, to a router that serves signed orders only."""

    reason = "unsigned"


class InputMismatch(InvocationRejected):
    """The request's input does not hash to the signed order's ``input_hash``."""

    reason = "input-mismatch"


class RateLimited(InvocationRejected):
    """The signer sent more orders than its rate allows; it may retry later."""

    reason = "rate-limited"


class NodeMismatch(InvocationRejected):
    """The receipt names a node other than the one the router sent the request to."""

    reason = "node-mismatch"


# Every reason a caller may see for a refused order, in the order the checks run.
CALLER_REASONS = tuple(
    cls.reason
    for cls in (
        MalformedInvocation,
        Unsigned,
        WorkloadMismatch,
        InputMismatch,
        BadSignature,
        RateLimited,
        UnknownSocket,
        SocketExpired,
        SocketNotHeld,
        DelegateExpired,
        DeadlineExpired,
        NonceReused,
        PriceAboveMax,
        EscrowExhausted,
        NodeUnregistered,
        NodeUnstaked,
        NodeBlacklisted,
        NodeNotAllowed,
        BadNodeSignature,
        ReceiptMismatch,
        OutputMismatch,
        PriceOffTerms,
        NodeMismatch,
    )
)
