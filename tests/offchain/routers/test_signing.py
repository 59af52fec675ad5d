"""Signed mesh summaries: canonical body, domain-separated digest, and every way to reject one."""

import time
from dataclasses import replace

import pytest
from eth_utils import keccak

from offchain.chain.identity import (
    Binding,
    EndorsedBinding,
    binding_digest,
    encode_endorsed_binding,
    endorsement_message,
    make_binding,
    static_stake_check,
)
from offchain.protocol.frames import encode_body
from offchain.routers.signing import (
    NOT_OWN_SUMMARY,
    SUMMARY_DOMAIN,
    UNSTAKED_ORIGIN,
    BindingCache,
    SummaryRejected,
    open_summary,
    sign_summary,
    summary_body,
    summary_digest,
    verify_neighbour,
    verify_summary,
)
from tests.offchain.routers.routernet import MeshKeys as Router

A = Router(b"router-a")
M = Router(b"router-m")  # the relaying router that tampers
U = Router(b"router-u")  # a router whose address is not staked as a router
# Both A and M are staked routers: M's forgeries must fail on their signatures, not on stake.
ROUTERS = static_stake_check([A.eth.address, M.eth.address])


def verify(signed, cache=None, now=None, is_router=ROUTERS):
    cache = BindingCache() if cache is None else cache  # an empty cache is falsy
    return verify_summary(signed, cache, time.time() if now is None else now, is_router=is_router)


def rejected(signed, cache=None, is_router=ROUTERS) -> str:
    with pytest.raises(SummaryRejected) as info:
        verify(signed, cache, is_router=is_router)
    return info.value.reason


def test_sign_verify__round_trip():
    summary = A.summary(seq=7)
    assert verify(sign_summary(summary, A.eth, A.binding)) == summary


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


def test_expired_binding__rejected_with_its_own_reason():
    old = Router(b"router-a", ttl_s=-1)
    assert rejected(sign_summary(old.summary(), old.eth, old.binding)) == (
        "summary-expired-binding"
    )


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
    verify(sign_summary(A.summary(), A.eth, A.binding), cache)
    assert len(cache) == 1
    # A different (forged) binding for the same origin is verified, and does not evict.
    assert rejected(sign_summary(A.summary(), M.eth, M.binding), cache) == (
        "summary-origin-mismatch"
    )
    assert verify(sign_summary(A.summary(2), A.eth, A.binding), cache)
    for label in (b"x", b"y"):
        other = Router(label)
        verify(
            sign_summary(other.summary(), other.eth, other.binding),
            cache,
            is_router=lambda address: True,
        )
    assert len(cache) == 2


def test_cache__expired_entry_rechecked():
    cache = BindingCache()
    signed = sign_summary(A.summary(), A.eth, A.binding)
    verify(signed, cache)
    with pytest.raises(SummaryRejected, match="expired"):
        verify(signed, cache, now=time.time() + 7_200)


def test_origin_not_a_staked_router__rejected_with_its_own_reason():
    signed = sign_summary(U.summary(), U.eth, U.binding)
    assert rejected(signed) == UNSTAKED_ORIGIN == "summary-unstaked-origin"
    assert verify(signed, is_router=static_stake_check([U.eth.address])) == U.summary()


def test_origin_unstaked_after_its_binding_was_cached__rejected():
    # Stake is asked on every summary, not only when the binding is first verified.
    cache = BindingCache()
    verify(sign_summary(A.summary(1), A.eth, A.binding), cache)
    unstaked = static_stake_check([M.eth.address])
    signed = sign_summary(A.summary(2), A.eth, A.binding)
    assert rejected(signed, cache, is_router=unstaked) == UNSTAKED_ORIGIN


def test_binding_claiming_unstaked_address__refused_before_any_signature_check(monkeypatch):
    # A binding of an unstaked address costs a decode, not an Ed25519 check and an ecrecover.
    def fail(*args, **kwargs):
        raise AssertionError("binding checked cryptographically")

    monkeypatch.setattr("offchain.routers.signing.verify_endorsed_binding", fail)
    monkeypatch.setattr("offchain.routers.signing.recover_address", fail)
    assert rejected(sign_summary(U.summary(), U.eth, U.binding)) == UNSTAKED_ORIGIN


def test_forged_binding_for_a_staked_address__bad_binding_not_unstaked():
    # M binds A's (staked) address to U's peer id without A's key: forged, not merely unstaked.
    claim = make_binding(M.eth, U.peer)
    forged_claim = Binding(U.peer, A.eth.address, claim.expiry, claim.signature)
    forged = encode_endorsed_binding(
        EndorsedBinding(forged_claim, U.libp2p.private_key.sign(endorsement_message(forged_claim)))
    )
    assert rejected(sign_summary(U.summary(), M.eth, forged)) == "summary-bad-binding"


def test_neighbour__own_summary_of_staked_router__admitted_with_its_address():
    signed = sign_summary(A.summary(seq=3), A.eth, A.binding)
    summary, address = verify_neighbour(
        signed, A.peer, BindingCache(), time.time(), is_router=ROUTERS
    )
    assert (summary, address) == (A.summary(seq=3), A.eth.address)


@pytest.mark.parametrize(
    ("who", "is_router", "reason"),
    [
        # M opens with A's genuine summary: it must present its own.
        ("m-with-a", ROUTERS, NOT_OWN_SUMMARY),
        # U is bound and signs correctly, but is not staked as a router.
        ("u", ROUTERS, UNSTAKED_ORIGIN),
        # A staked only for another role (the set checked is the routers').
        ("a", static_stake_check([]), UNSTAKED_ORIGIN),
        ("a-no-binding", ROUTERS, "summary-no-binding"),
        ("a-expired", ROUTERS, "summary-expired-binding"),
    ],
)
def test_neighbour__not_a_staked_router__refused(who, is_router, reason):
    peer, signed = {
        "m-with-a": (M.peer, sign_summary(A.summary(), A.eth, A.binding)),
        "u": (U.peer, sign_summary(U.summary(), U.eth, U.binding)),
        "a": (A.peer, sign_summary(A.summary(), A.eth, A.binding)),
        "a-no-binding": (A.peer, sign_summary(A.summary(), A.eth, b"")),
        "a-expired": (A.peer, sign_summary(A.summary(), A.eth, Router(b"router-a", -1).binding)),
    }[who]
    with pytest.raises(SummaryRejected) as info:
        verify_neighbour(signed, peer, BindingCache(), time.time(), is_router=is_router)
    assert info.value.reason == reason
