import time

import pytest

from offchain.crypto.keys import generate_keypair
from offchain.net.identity import (
    Binding,
    BindingError,
    classify_peer,
    decode_binding,
    encode_binding,
    make_binding,
    static_stake_check,
    verify_binding,
)

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
