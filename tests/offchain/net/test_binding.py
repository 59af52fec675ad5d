import time

import pytest
from libp2p.peer.id import ID

from offchain.chain.identity import (
    Binding,
    BindingError,
    EndorsedBinding,
    classify_peer,
    decode_binding,
    decode_endorsed_binding,
    encode_binding,
    encode_endorsed_binding,
    endorsement_message,
    make_binding,
    make_endorsed_binding,
    stake_check_for,
    static_role_check,
    static_stake_check,
    verify_binding,
    verify_endorsed_binding,
)
from offchain.crypto.keys import generate_keypair
from offchain.net.host import identity_from_seed
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER, ROLE_VALIDATOR

PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
KEY = generate_keypair(b"node-owner")
OTHER = generate_keypair(b"someone-else")


def test_verify__own_binding__returns_address():
    binding = decode_binding(encode_binding(make_binding(KEY, PEER)))
    assert verify_binding(binding, PEER) == KEY.address


def test_verify__binding_for_another_peer__rejected():
    with pytest.raises(BindingError, match="another peer"):
        verify_binding(make_binding(KEY, PEER), "12D3KooWsomeoneelse")


def test_verify__expired__rejected():
    binding = make_binding(KEY, PEER, ttl_s=10)
    with pytest.raises(BindingError, match="expired"):
        verify_binding(binding, PEER, now=time.time() + 11)


def test_verify__signed_by_other_key__rejected():
    good = make_binding(KEY, PEER)
    forged = Binding(PEER, OTHER.address, good.expiry, good.signature)
    with pytest.raises(BindingError):
        verify_binding(forged, PEER)


def test_verify__tampered_expiry__rejected():
    good = make_binding(KEY, PEER)
    with pytest.raises(BindingError):
        verify_binding(Binding(PEER, KEY.address, good.expiry + 1, good.signature), PEER)


def test_decode__garbage__binding_error():
    with pytest.raises(BindingError):
        decode_binding(b"\x00\x01garbage")


def test_classify__staked_address__staked():
    data = encode_binding(make_binding(KEY, PEER))
    assert classify_peer(data, PEER, static_stake_check([KEY.address])) == (KEY.address, True)


def test_classify__unstaked_address__limited():
    data = encode_binding(make_binding(KEY, PEER))
    assert classify_peer(data, PEER, static_stake_check([OTHER.address])) == (KEY.address, False)


def test_classify__no_binding__limited():
    assert classify_peer(b"", PEER, lambda a: True) == ("", False)


def test_classify__binding_of_other_peer__limited():
    data = encode_binding(make_binding(KEY, PEER))
    assert classify_peer(data, "12D3KooWimpostor", lambda a: True) == ("", False)


def test_roles__each_role_its_own_set__compute_stake_does_not_make_a_router():
    roles = static_role_check({ROLE_COMPUTE: [KEY.address], ROLE_ROUTER: [OTHER.address.lower()]})
    assert roles(KEY.address, ROLE_COMPUTE) and not roles(KEY.address, ROLE_ROUTER)
    assert roles(OTHER.address, ROLE_ROUTER) and not roles(OTHER.address, ROLE_COMPUTE)
    assert not roles(KEY.address, ROLE_VALIDATOR)  # a role nobody listed
    is_router = stake_check_for(roles, ROLE_ROUTER)
    assert is_router(OTHER.address) and not is_router(KEY.address)
    data = encode_binding(make_binding(KEY, PEER))
    assert classify_peer(data, PEER, stake_check_for(roles, ROLE_COMPUTE)) == (KEY.address, True)
    assert classify_peer(data, PEER, is_router) == (KEY.address, False)


def test_roles__flags_are_the_staking_contracts():
    assert (ROLE_VALIDATOR, ROLE_ROUTER, ROLE_COMPUTE) == (1, 2, 4)
    with pytest.raises(ValueError, match="not a role flag"):
        static_role_check({ROLE_ROUTER | ROLE_COMPUTE: [KEY.address]})


# Endorsed bindings: the peer's libp2p key consents, so the binding holds when relayed.

LIBP2P = identity_from_seed(b"\x07" * 32)
LIBP2P_PEER = ID.from_pubkey(LIBP2P.public_key).to_string()
STRANGER = identity_from_seed(b"\x08" * 32)


def test_endorsed__round_trip__verifies_to_address():
    endorsed = make_endorsed_binding(KEY, LIBP2P.private_key, LIBP2P_PEER)
    data = encode_endorsed_binding(endorsed)
    assert decode_endorsed_binding(data) == endorsed
    assert verify_endorsed_binding(decode_endorsed_binding(data), LIBP2P_PEER) == KEY.address


def test_endorsed__libp2p_key_of_another_peer__refused_when_made():
    with pytest.raises(ValueError):
        make_endorsed_binding(KEY, STRANGER.private_key, LIBP2P_PEER)


def test_endorsed__claim_about_someone_elses_peer_id__rejected():
    # A third party binds its own address to our peer id: its Ethereum signature is valid,
    # but it cannot produce our libp2p key's endorsement.
    claim = make_binding(OTHER, LIBP2P_PEER)
    forged = EndorsedBinding(claim, STRANGER.private_key.sign(endorsement_message(claim)))
    with pytest.raises(BindingError, match="not endorsed"):
        verify_endorsed_binding(forged, LIBP2P_PEER)


def test_endorsed__endorsement_reused_for_other_address__rejected():
    good = make_endorsed_binding(KEY, LIBP2P.private_key, LIBP2P_PEER)
    claim = make_binding(OTHER, LIBP2P_PEER)
    with pytest.raises(BindingError, match="not endorsed"):
        verify_endorsed_binding(EndorsedBinding(claim, good.peer_signature), LIBP2P_PEER)


def test_endorsed__peer_id_without_embedded_key__rejected():
    endorsed = make_endorsed_binding(KEY, LIBP2P.private_key, LIBP2P_PEER)
    sha_id = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    claim = make_binding(KEY, sha_id)
    with pytest.raises(BindingError, match="embed"):
        verify_endorsed_binding(EndorsedBinding(claim, endorsed.peer_signature), sha_id)


@pytest.mark.parametrize("size", [0, 63, 65])
def test_endorsed__peer_signature_of_wrong_length__rejected(size):
    endorsed = make_endorsed_binding(KEY, LIBP2P.private_key, LIBP2P_PEER)
    data = encode_endorsed_binding(EndorsedBinding(endorsed.binding, b"\x01" * size))
    with pytest.raises(BindingError, match="length"):
        decode_endorsed_binding(data)


def test_endorsed__garbage_or_oversized__rejected():
    with pytest.raises(BindingError):
        decode_endorsed_binding(b"\xa0")
    with pytest.raises(BindingError):
        decode_endorsed_binding(b"\x00" * 600)
