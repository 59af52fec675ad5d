"""IBFT message decoding under hostile input: bounded cache memory, bounded recoveries."""

import gc
import tracemalloc

import pytest

from offchain.crypto.keys import generate_keypair
from offchain.protocol import ibft_wire as m
from offchain.protocol.canonical_cbor import dumps

MEMBERS = [generate_keypair(f"bounds-member-{i}".encode()) for i in range(4)]
OUTSIDER = generate_keypair(b"bounds-outsider")
DIGEST = bytes(range(32))


def is_member(address: str) -> bool:
    return address in {k.address for k in MEMBERS}


@pytest.fixture
def recoveries(monkeypatch):
    """Count the signature recoveries decoding does (the real ones, through a counter)."""
    m.clear_caches()
    calls = []
    real = m.recover_address

    def counting(digest, signature):
        calls.append(signature)
        return real(digest, signature)

    monkeypatch.setattr(m, "recover_address", counting)
    yield calls
    m.clear_caches()


def wire(kind: m.Kind, *fields) -> bytes:
    return dumps([m.VERSION, int(kind), *fields])


def signed(item: m.Signed) -> list[bytes]:
    return [item.raw, item.signature]


def signed_list(items) -> list[list[bytes]]:
    return [signed(i) for i in items]


def distinct_round_changes(count: int, height: int = 5) -> list[m.Signed]:
    keys = [generate_keypair(f"bounds-rc-{height}-{i}".encode()) for i in range(count)]
    return [m.sign(k, m.RoundChange(height, 2, None, None)) for k in keys]


def test_decode__inner_list_longer_than_the_validator_set__refused_before_any_recovery(
    recoveries,
):
    main = m.sign(MEMBERS[0], m.Proposal(5, 2, DIGEST))
    one = m.sign(MEMBERS[1], m.RoundChange(5, 2, None, None))
    data = wire(m.Kind.PRE_PREPARE, signed(main), b"v", signed_list([one] * 1_000), [])
    with pytest.raises(m.MalformedMessage, match=f"more than {m.MAX_VALIDATORS}"):
        m.decode(data, is_member)
    assert recoveries == []


def test_decode__non_member_sender_with_a_full_justification__costs_one_recovery(recoveries):
    rcs = distinct_round_changes(m.MAX_VALIDATORS)
    prepares = [m.sign(k, m.Prepare(5, 1, DIGEST)) for k in MEMBERS]
    data = m.pre_prepare(OUTSIDER, 5, 2, b"value", DIGEST, tuple(rcs), tuple(prepares))
    m.clear_caches()
    recoveries.clear()
    with pytest.raises(m.NotMember, match=OUTSIDER.address):
        m.decode(data, is_member)
    assert len(recoveries) == 1
    # without a membership check the same bytes cost one recovery per signer
    m.clear_caches()
    recoveries.clear()
    assert len(m.signers(m.decode(data))) == 1 + m.MAX_VALIDATORS + len(MEMBERS)
    assert len(recoveries) == 1 + m.MAX_VALIDATORS + len(MEMBERS)


def test_decode__member_sender_with_a_non_member_inner_signer__stops_at_it(recoveries):
    prepares = (
        m.sign(MEMBERS[1], m.Prepare(5, 1, DIGEST)),
        m.sign(OUTSIDER, m.Prepare(5, 1, DIGEST)),
        m.sign(MEMBERS[2], m.Prepare(5, 1, DIGEST)),
        m.sign(MEMBERS[3], m.Prepare(5, 1, DIGEST)),
    )
    data = m.round_change(MEMBERS[0], 5, 2, 1, b"value", DIGEST, prepares)
    m.clear_caches()
    recoveries.clear()
    with pytest.raises(m.NotMember, match=OUTSIDER.address):
        m.decode(data, is_member)
    assert len(recoveries) == 3  # the sender, the first prepare, the outsider's


def test_decode__decided_whose_first_commit_is_a_non_member__costs_one_recovery(recoveries):
    commits = (m.sign(OUTSIDER, m.Commit(5, 1, DIGEST, b"s")),) + tuple(
        m.sign(k, m.Commit(5, 1, DIGEST, b"s")) for k in MEMBERS
    )
    data = m.encode(m.DecidedMsg(b"value", commits))
    m.clear_caches()
    recoveries.clear()
    with pytest.raises(m.NotMember):
        m.decode(data, is_member)
    assert len(recoveries) == 1


def test_decode__one_signer_twice_in_a_list__refused():
    prepare = m.sign(MEMBERS[1], m.Prepare(5, 1, DIGEST))
    data = m.round_change(MEMBERS[0], 5, 2, 1, b"value", DIGEST, (prepare, prepare))
    with pytest.raises(m.DuplicateSigner, match=MEMBERS[1].address):
        m.decode(data)


def test_decode__cached_message__still_checked_against_the_membership(recoveries):
    prepares = tuple(m.sign(k, m.Prepare(5, 1, DIGEST)) for k in MEMBERS[1:])
    data = m.round_change(MEMBERS[0], 5, 2, 1, b"value", DIGEST, prepares)
    m.clear_caches()
    m.decode(data)  # cached, opened without a membership check
    recoveries.clear()
    assert m.decode(data, is_member).round_change.sender == MEMBERS[0].address
    with pytest.raises(m.NotMember, match=MEMBERS[2].address):
        m.decode(data, lambda address: address != MEMBERS[2].address)
    assert recoveries == []


def test_decode__honest_messages_of_every_kind__decoded_with_the_membership_check():
    prepares = tuple(m.sign(k, m.Prepare(5, 1, DIGEST)) for k in MEMBERS[:3])
    commits = tuple(m.sign(k, m.Commit(5, 1, DIGEST, b"s" * 96)) for k in MEMBERS[:3])
    rcs = tuple(m.sign(k, m.RoundChange(5, 2, None, None)) for k in MEMBERS[1:])
    datas = [
        m.pre_prepare(MEMBERS[0], 5, 2, b"value", DIGEST, rcs, prepares),
        m.prepare(MEMBERS[0], 5, 1, DIGEST),
        m.commit(MEMBERS[0], 5, 1, DIGEST, b"s" * 96),
        m.round_change(MEMBERS[0], 5, 2, 1, b"value", DIGEST, prepares),
        m.encode(m.DecidedMsg(b"value", commits)),
    ]
    for data in datas:
        assert m.encode(m.decode(data, is_member)) == data


def test_decode_cache__many_large_distinct_messages__stays_within_its_byte_budget():
    m.clear_caches()
    value = bytes(m.DECODE_CACHE_MAX_MESSAGE - 1_024)
    count = 3 * m.DECODE_CACHE_BYTES // len(value)
    for i in range(count):
        m.decode(m.pre_prepare(MEMBERS[0], i, 0, value, DIGEST))
        entries, charged = m.decode_cache_usage()
        assert charged <= m.DECODE_CACHE_BYTES
    assert 0 < entries < count
    # a message above the per-entry cap is never cached
    m.clear_caches()
    big = m.pre_prepare(MEMBERS[0], 1, 0, bytes(m.DECODE_CACHE_MAX_MESSAGE + 1), DIGEST)
    m.decode(big)
    assert m.decode_cache_usage() == (0, 0)


@pytest.mark.parametrize("value_size", [0, 40_000])
def test_decoded_charge__covers_the_memory_a_cached_message_keeps(value_size):
    rcs = distinct_round_changes(m.MAX_VALIDATORS, height=9)
    data = m.pre_prepare(MEMBERS[0], 9, 2, bytes(value_size), DIGEST, tuple(rcs))
    m.clear_caches()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        message = m.decode(data)
        m._recover.cache_clear()  # the recovery and payload caches are bounded on their own
        m._decode_payload_cached.cache_clear()
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert m.decode_cache_usage()[0] == 1
    assert 0 < kept - before <= m.decoded_charge(data, message)


def test_decode_payload__every_short_or_odd_input__malformed_not_a_crash():
    raw = m.encode_payload(m.Commit(5, 1, DIGEST, b"seal"))
    for cut in range(len(raw)):
        with pytest.raises(m.MalformedMessage):
            m.decode_payload(raw[:cut])
    for kind in range(256):
        data = bytes([kind]) + raw[1:]
        try:
            m.decode_payload(data)
        except m.MalformedMessage:
            pass
    with pytest.raises(m.MalformedMessage):
        m.decode_payload("not bytes")


def test_recover_cache__an_entry_of_the_largest_payload__within_its_stated_bytes():
    keys = [generate_keypair(f"bounds-seal-{i}".encode()) for i in range(200)]
    items = [m.sign(k, m.Commit(5, 1, DIGEST, bytes(m.MAX_SEAL_BYTES))) for k in keys]
    m.clear_caches()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for item in items:
            m.open_signed(item.raw, item.signature)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        m.clear_caches()
    assert (after - before) / len(items) <= m.RECOVER_ENTRY_BYTES
    assert m.RECOVER_CACHE * m.RECOVER_ENTRY_BYTES <= 16 << 20


def test_payload_cache__an_entry_of_the_largest_payload__within_its_stated_bytes():
    raws = [
        m.encode_payload(m.Commit(5, i, bytes([i % 256]) * 32, bytes(m.MAX_SEAL_BYTES)))
        for i in range(200)
    ]
    m.clear_caches()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for raw in raws:
            m._decode_payload_cached(raw)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        m.clear_caches()
    # the bytes are the caller's (a message holds them anyway), the rest is the cache's
    assert (after - before) / len(raws) <= m.PAYLOAD_ENTRY_BYTES
    assert m.PAYLOAD_CACHE * m.PAYLOAD_ENTRY_BYTES <= 4 << 20


def test_payload_cache__a_view_change_decodes_each_distinct_payload_once(recoveries, monkeypatch):
    prepares = tuple(m.sign(k, m.Prepare(5, 1, DIGEST)) for k in MEMBERS)
    datas = [m.round_change(k, 5, 2, 1, b"value", DIGEST, prepares) for k in MEMBERS]
    m.clear_caches()
    decoded = []
    real = m.decode_payload
    monkeypatch.setattr(m, "decode_payload", lambda raw: decoded.append(raw) or real(raw))
    for data in datas:
        m.decode(data, is_member)
    # every member's ROUND-CHANGE payload is the same bytes, and so is every PREPARE payload
    # for one digest: two decodes in all, but a recovery per signed payload
    assert len(set(decoded)) == len(decoded) == 2
    assert len(recoveries) == len(MEMBERS) + len(prepares)


def test_decode__a_strangers_justification__left_undecoded(recoveries, monkeypatch):
    rcs = tuple(
        m.sign(k, m.RoundChange(5 + i, 2, None, None)) for i, k in enumerate(MEMBERS)
    )  # distinct payloads: none is decoded from the cache
    data = m.pre_prepare(OUTSIDER, 5, 2, b"value", DIGEST, rcs)

    def bad_inner(key):
        return wire(
            m.Kind.PRE_PREPARE,
            signed(m.sign(key, m.Proposal(5, 2, DIGEST))),
            b"value",
            [[b"\xff" * 40, bytes(65)]],  # a payload that does not decode
            [],
        )

    decoded = []
    real = m.decode_payload
    monkeypatch.setattr(m, "decode_payload", lambda raw: decoded.append(raw) or real(raw))
    for message in (data, bad_inner(OUTSIDER)):
        m.clear_caches()
        recoveries.clear()
        decoded.clear()
        with pytest.raises(m.NotMember):
            m.decode(message, is_member)
        assert len(recoveries) == 1 and len(decoded) == 1  # the proposal alone
    # a member's malformed justification is refused as such, after its sender's recovery
    recoveries.clear()
    with pytest.raises(m.MalformedMessage):
        m.decode(bad_inner(MEMBERS[0]), is_member)
    assert len(recoveries) == 1
