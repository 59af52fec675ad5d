"""Signed mesh summaries: canonical body, domain-separated digest, and every way to reject one."""

import time
from dataclasses import replace

import pytest
from eth_utils import keccak

from offchain.net.framing import encode_body
from offchain.net.identity import (
    EndorsedBinding,
    binding_digest,
    encode_endorsed_binding,
    endorsement_message,
    make_binding,
)
from offchain.routers.signing import (
    SUMMARY_DOMAIN,
    BindingCache,
    SummaryRejected,
    open_summary,
    sign_summary,
    summary_body,
    summary_digest,
    verify_summary,
)
from tests.offchain.routers.routernet import MeshKeys as Router

A = Router(b"router-a")
M = Router(b"router-m")  # the relaying router that tampers


def rejected(signed, cache=None) -> str:
    with pytest.raises(SummaryRejected) as info:
        verify_summary(signed, cache or BindingCache(), time.time())
    return info.value.reason


def test_sign_verify__round_trip():
    summary = A.summary(seq=7)
    assert verify_summary(sign_summary(summary, A.eth, A.binding), BindingCache(), time.time()) == (
        summary
    )


def test_body__canonical_and_holds_origin_and_seq():
    summary = A.summary(seq=7)
    body = summary_body(summary)
    assert body == encode_body(dict(reversed(list(summary.to_map().items()))))
    assert open_summary(sign_summary(summary, A.eth, A.binding)) == summary
    assert summary_digest(body) != summary_digest(summary_body(replace(summary, seq=8)))


def test_digest__domain_separated():
    body = summary_body(A.summary())
    assert summary_digest(body) == keccak(SUMMARY_DOMAIN + body)
    assert summary_digest(body) != keccak(body)


def test_signature_of_another_statement__not_a_summary_signature():
    # A signature made over a binding digest by the same key does not verify as a summary.
    signed = sign_summary(A.summary(), A.eth, A.binding)
    other = A.eth.sign_hash(binding_digest(A.peer, A.eth.address, 1))
    assert rejected(replace(signed, signature=other)) == "summary-wrong-signer"


def test_tampered_workloads__rejected():
    signed = sign_summary(A.summary(mm=90_000), A.eth, A.binding)
    cheaper = summary_body(A.summary(mm=1))
    assert rejected(replace(signed, body=cheaper)) == "summary-wrong-signer"


def test_tampered_seq__rejected():
    signed = sign_summary(A.summary(seq=1), A.eth, A.binding)
    assert rejected(replace(signed, body=summary_body(A.summary(seq=99)))) == (
        "summary-wrong-signer"
    )


def test_forged_origin_signed_by_relayer_with_origins_binding__wrong_signer():
    assert rejected(sign_summary(A.summary(), M.eth, A.binding)) == "summary-wrong-signer"


def test_forged_origin_with_relayers_own_binding__origin_mismatch():
    assert rejected(sign_summary(A.summary(), M.eth, M.binding)) == "summary-origin-mismatch"


def test_relayer_binds_its_key_to_origins_peer_id__bad_binding():
    # M signs a binding "A's peer id belongs to M's address" and endorses it with its own
    # libp2p key: the Ethereum half is valid, the endorsement is not A's.
    claim = make_binding(M.eth, A.peer)
    forged = encode_endorsed_binding(
        EndorsedBinding(claim, M.libp2p.private_key.sign(endorsement_message(claim)))
    )
    assert rejected(sign_summary(A.summary(), M.eth, forged)) == "summary-bad-binding"


def test_no_binding__rejected():
    assert rejected(sign_summary(A.summary(), A.eth, b"")) == "summary-no-binding"


def test_garbage_binding__rejected():
    assert rejected(sign_summary(A.summary(), A.eth, b"\xff" * 40)) == "summary-bad-binding"


def test_expired_binding__rejected():
    old = Router(b"router-a", ttl_s=-1)
    assert rejected(sign_summary(old.summary(), old.eth, old.binding)) == "summary-bad-binding"


@pytest.mark.parametrize("size", [0, 1, 64, 66, 1_000])
def test_truncated_or_oversized_signature__rejected(size):
    signed = sign_summary(A.summary(), A.eth, A.binding)
    signature = (signed.signature * 20)[:size]
    assert rejected(replace(signed, signature=signature)) == "summary-bad-signature-length"


def test_unrecoverable_signature__rejected():
    signed = sign_summary(A.summary(), A.eth, A.binding)
    bad_v = signed.signature[:64] + b"\x05"
    assert rejected(replace(signed, signature=bad_v)) == "summary-bad-signature"
    zero = b"\x00" * 64 + b"\x1b"
    assert rejected(replace(signed, signature=zero)) in {
        "summary-bad-signature",
        "summary-wrong-signer",
    }


def test_malformed_body__rejected():
    signed = sign_summary(A.summary(), A.eth, A.binding)
    assert rejected(replace(signed, body=b"\x01\x02")) == "summary-malformed"


def test_cache__verified_binding_reused_but_a_different_one_rechecked():
    cache = BindingCache(size=2)
    verify_summary(sign_summary(A.summary(), A.eth, A.binding), cache, time.time())
    assert len(cache) == 1
    # A different (forged) binding for the same origin is verified, and does not evict.
    assert rejected(sign_summary(A.summary(), M.eth, M.binding), cache) == (
        "summary-origin-mismatch"
    )
    assert verify_summary(sign_summary(A.summary(2), A.eth, A.binding), cache, time.time())
    for label in (b"x", b"y"):
        other = Router(label)
        verify_summary(sign_summary(other.summary(), other.eth, other.binding), cache, time.time())
    assert len(cache) == 2


def test_cache__expired_entry_rechecked():
    cache = BindingCache()
    signed = sign_summary(A.summary(), A.eth, A.binding)
    verify_summary(signed, cache, time.time())
    with pytest.raises(SummaryRejected, match="expired"):
        verify_summary(signed, cache, time.time() + 7_200)
