"""Signed mesh summaries: what a router signs, and how a receiver checks it before use.

A router signs ``keccak(SUMMARY_DOMAIN || body)`` with its secp256k1 (Ethereum) key, where
``body`` is the canonical CBOR of its ``Summary`` map, which holds the origin router's peer id
and its sequence number. The signed summary carries the origin's endorsed identity binding
(``offchain/net/identity.py``): the Ethereum key binds itself to the peer id and the peer's
libp2p key endorses that, so any router can check the binding without a connection to the
origin. A receiver accepts a summary only if the binding names the summary's origin and the
signature recovers to the bound address. Relaying routers pass the three byte strings on
unchanged, so they cannot alter what the origin said, or speak for another router.

Pure apart from the clock passed in; the agent keeps a ``BindingCache`` so each origin's
binding (an Ed25519 check and an ecrecover) is verified once, not on every summary.
"""

from collections import OrderedDict
from dataclasses import dataclass

from eth_utils import keccak

from offchain.crypto.keys import InvalidSignature, Keypair, recover_address
from offchain.net.framing import FrameError, decode_body, encode_body
from offchain.net.identity import (
    BindingError,
    decode_endorsed_binding,
    verify_endorsed_binding,
)
from offchain.net.messages import SignedSummary, Summary

SUMMARY_DOMAIN = b"EMC mesh summary v1"
SIGNATURE_SIZE = 65


class SummaryRejected(ValueError):
    """A summary that must be dropped; ``reason`` is the tag for logs and metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
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
        raise SummaryRejected("summary-malformed", str(exc)) from exc


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

    def address(self, origin: str, binding: bytes, now: float) -> str:
        """Return the address ``binding`` binds ``origin`` to, or raise ``SummaryRejected``."""
        held = self._entries.get(origin)
        if held is not None and held.binding == binding and held.expiry >= now:
            self._entries.move_to_end(origin)
            return held.address
        if not binding:
            raise SummaryRejected("summary-no-binding", f"origin {origin} sent no binding")
        try:
            endorsed = decode_endorsed_binding(binding)
        except BindingError as exc:
            raise SummaryRejected("summary-bad-binding", str(exc)) from exc
        if endorsed.binding.peer_id != origin:
            raise SummaryRejected(
                "summary-origin-mismatch",
                f"summary from {origin} carries the binding of {endorsed.binding.peer_id}",
            )
        try:
            address = verify_endorsed_binding(endorsed, origin, now)
        except BindingError as exc:
            raise SummaryRejected("summary-bad-binding", str(exc)) from exc
        self._entries[origin] = _Verified(binding, address, endorsed.binding.expiry)
        self._entries.move_to_end(origin)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return address

    def forget(self, origin: str) -> None:
        """Drop ``origin``'s verified binding."""
        self._entries.pop(origin, None)


def verify_summary(
    signed: SignedSummary, bindings: BindingCache, now: float, opened: Summary | None = None
) -> Summary:
    """Return the summary in ``signed`` if its origin signed it, else raise ``SummaryRejected``.

    ``now`` is wall-clock time (for the binding's expiry); ``opened`` is ``open_summary(signed)``
    when the caller already has it.
    """
    if len(signed.signature) != SIGNATURE_SIZE:
        raise SummaryRejected(
            "summary-bad-signature-length",
            f"signature of {len(signed.signature)} bytes, expected {SIGNATURE_SIZE}",
        )
    summary = opened if opened is not None else open_summary(signed)
    address = bindings.address(summary.router, signed.binding, now)
    try:
        signer = recover_address(summary_digest(signed.body), signed.signature)
    except InvalidSignature as exc:
        raise SummaryRejected("summary-bad-signature", str(exc)) from exc
    if signer != address:
        raise SummaryRejected(
            "summary-wrong-signer",
            f"summary of {summary.router} (bound to {address}) signed by {signer}",
        )
    return summary
