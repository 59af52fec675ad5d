"""Signed mesh summaries: what a router signs, and how a receiver checks it before use.

A router signs ``keccak(SUMMARY_DOMAIN || body)`` with its secp256k1 (Ethereum) key, where
``body`` is the canonical CBOR of its ``Summary`` map, which holds the origin router's peer id
and its sequence number. The signed summary carries the origin's endorsed identity binding
(``offchain/chain/identity.py``): the Ethereum key binds itself to the peer id and the peer's
libp2p key endorses that, so any router can check the binding without a connection to the
origin. A receiver accepts a summary only if the binding names the summary's origin, the bound
address is staked as a router, and the signature recovers to that address. Relaying routers pass
the three byte strings on unchanged, so they cannot alter what the origin said, or speak for
another router.

Pure apart from the clock passed in; the agent keeps a ``BindingCache`` so each origin's
binding (an Ed25519 check and an ecrecover) is verified once, not on every summary.
"""

from collections import OrderedDict
from dataclasses import dataclass

from offchain.chain.identity import (
    BindingError,
    StakeCheck,
    decode_endorsed_binding,
    verify_endorsed_binding,
)
from offchain.crypto.hashing import keccak
from offchain.crypto.keys import InvalidSignature, Keypair, recover_address
from offchain.protocol.errors import InputRejected
from offchain.protocol.frames import FrameError, decode_body, encode_body
from offchain.protocol.wire import SignedSummary, Summary

SUMMARY_DOMAIN = b"EMC mesh summary v1"
SIGNATURE_SIZE = 65

# Why a summary is refused: the ``reason`` of log lines and of ``emc_router_errors_total``.
MALFORMED = "summary-malformed"
BAD_SIGNATURE_LENGTH = "summary-bad-signature-length"
NO_BINDING = "summary-no-binding"
BAD_BINDING = "summary-bad-binding"
EXPIRED_BINDING = "summary-expired-binding"
ORIGIN_MISMATCH = "summary-origin-mismatch"
UNSTAKED_ORIGIN = "summary-unstaked-origin"
BAD_SIGNATURE = "summary-bad-signature"
WRONG_SIGNER = "summary-wrong-signer"
REASONS = (
    MALFORMED,
    BAD_SIGNATURE_LENGTH,
    NO_BINDING,
    BAD_BINDING,
    EXPIRED_BINDING,
    ORIGIN_MISMATCH,
    UNSTAKED_ORIGIN,
    BAD_SIGNATURE,
    WRONG_SIGNER,
)
# A mesh neighbour whose first summary is another router's (it must present its own).
NOT_OWN_SUMMARY = "mesh-not-own-summary"


class SummaryRejected(InputRejected):
    """A summary that must be dropped; ``reason`` is the tag for logs and metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}", reason)
        self.detail = detail


def summary_body(summary: Summary) -> bytes:
    """Return the canonical bytes of ``summary`` that its router signs."""
    return encode_body(summary.to_map())


def summary_digest(body: bytes) -> bytes:
    """Return the 32-byte digest signed for a summary body (domain-separated)."""
    return keccak(SUMMARY_DOMAIN + body)


def sign_summary(summary: Summary, key: Keypair, binding: bytes) -> SignedSummary:
    """Return ``summary`` signed with ``key``, carrying the router's encoded endorsed binding."""
    body = summary_body(summary)
    return SignedSummary(body, key.sign_hash(summary_digest(body)), binding)


def open_summary(signed: SignedSummary) -> Summary:
    """Return the summary inside ``signed`` without checking its signature.

    For cheap checks (is it newer than what we hold?) before paying for verification.
    Raises ``SummaryRejected`` if the body is not a canonical summary.
    """
    try:
        return Summary.from_map(decode_body(signed.body))
    except FrameError as exc:
        raise SummaryRejected(MALFORMED, str(exc)) from exc


@dataclass(frozen=True)
class _Verified:
    binding: bytes
    address: str
    expiry: int


class BindingCache:
    """Verified bindings by origin peer id, at most ``size`` of them (oldest forgotten)."""

    def __init__(self, size: int = 1_024) -> None:
        self.size = size
        self._entries: OrderedDict[str, _Verified] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def address(self, origin: str, binding: bytes, now: float, is_router: StakeCheck) -> str:
        """Return the staked router address ``binding`` binds ``origin`` to.

        Raises ``SummaryRejected`` for a missing, malformed, foreign, expired or forged binding,
        or one whose address ``is_router`` does not know as staked. Stake is asked every time
        (it changes); the cryptographic checks run once per binding, and only for an address
        that is staked, so bindings of unstaked addresses cost no signature check.
        """
        held = self._entries.get(origin)
        if held is not None and held.binding == binding and held.expiry >= now:
            self._entries.move_to_end(origin)
            check_router_stake(origin, held.address, is_router)
            return held.address
        if not binding:
            raise SummaryRejected(NO_BINDING, f"origin {origin} sent no binding")
        try:
            endorsed = decode_endorsed_binding(binding)
        except BindingError as exc:
            raise SummaryRejected(BAD_BINDING, str(exc)) from exc
        if endorsed.binding.peer_id != origin:
            raise SummaryRejected(
                ORIGIN_MISMATCH,
                f"summary from {origin} carries the binding of {endorsed.binding.peer_id}",
            )
        if endorsed.binding.expiry < now:
            raise SummaryRejected(
                EXPIRED_BINDING, f"binding of {origin} expired at {endorsed.binding.expiry}"
            )
        check_router_stake(origin, endorsed.binding.address, is_router)
        try:
            address = verify_endorsed_binding(endorsed, origin, now)
        except BindingError as exc:
            raise SummaryRejected(BAD_BINDING, str(exc)) from exc
        self._entries[origin] = _Verified(binding, address, endorsed.binding.expiry)
        self._entries.move_to_end(origin)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return address

    def forget(self, origin: str) -> None:
        """Drop ``origin``'s verified binding."""
        self._entries.pop(origin, None)


def check_router_stake(origin: str, address: str, is_router: StakeCheck) -> None:
    """Check that ``address``, bound to ``origin``, is staked as a router; else raise."""
    if not is_router(address):
        raise SummaryRejected(
            UNSTAKED_ORIGIN, f"origin {origin} is bound to {address}, not a staked router"
        )


def verify_neighbour(
    signed: SignedSummary,
    neighbour: str,
    bindings: BindingCache,
    now: float,
    *,
    is_router: StakeCheck,
) -> tuple[Summary, str]:
    """Return ``neighbour``'s own summary and staked router address, its mesh credentials.

    The first summary on a mesh stream must be the neighbour's own (``neighbour`` is the peer id
    Noise authenticated), signed by a staked router bound to that peer id. Freshness does not
    matter here: the same summary may already have reached us relayed. Raises
    ``SummaryRejected`` with ``NOT_OWN_SUMMARY`` or one of ``REASONS``.
    """
    summary = open_summary(signed)
    if summary.router != neighbour:
        raise SummaryRejected(
            NOT_OWN_SUMMARY, f"{neighbour} opened with the summary of {summary.router}"
        )
    return summary, _verified_signer(signed, summary, bindings, now, is_router)


def verify_summary(
    signed: SignedSummary,
    bindings: BindingCache,
    now: float,
    opened: Summary | None = None,
    *,
    is_router: StakeCheck,
) -> Summary:
    """Return the summary in ``signed`` if a staked router signed it about itself, else raise.

    ``now`` is wall-clock time (for the binding's expiry); ``opened`` is ``open_summary(signed)``
    when the caller already has it; ``is_router`` says whether an address is staked as a router.
    Raises ``SummaryRejected`` with one of ``REASONS``.
    """
    summary = opened if opened is not None else open_summary(signed)
    _verified_signer(signed, summary, bindings, now, is_router)
    return summary


def _verified_signer(
    signed: SignedSummary,
    summary: Summary,
    bindings: BindingCache,
    now: float,
    is_router: StakeCheck,
) -> str:
    """Return the staked router address that signed ``summary``, or raise ``SummaryRejected``."""
    if len(signed.signature) != SIGNATURE_SIZE:
        raise SummaryRejected(
            BAD_SIGNATURE_LENGTH,
            f"signature of {len(signed.signature)} bytes, expected {SIGNATURE_SIZE}",
        )
    address = bindings.address(summary.router, signed.binding, now, is_router)
    try:
        signer = recover_address(summary_digest(signed.body), signed.signature)
    except InvalidSignature as exc:
        raise SummaryRejected(BAD_SIGNATURE, str(exc)) from exc
    if signer != address:
        raise SummaryRejected(
            WRONG_SIGNER,
            f"summary of {summary.router} (bound to {address}) signed by {signer}",
        )
    return address
