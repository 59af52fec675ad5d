"""Fuzzing the IBFT message decoder: whatever the bytes, only ``MessageError`` comes out."""

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from offchain.crypto.keys import generate_keypair
from offchain.protocol import ibft_wire as m
from offchain.protocol.canonical_cbor import dumps, head

KEYS = [generate_keypair(f"fuzz-{i}".encode()) for i in range(4)]
MEMBERS = frozenset(k.address for k in KEYS[:3])
DIGEST = bytes(range(32))
CI_EXAMPLES = 250
SLOW_EXAMPLES = 20_000


def _samples() -> list[bytes]:
    prepares = tuple(m.sign(k, m.Prepare(5, 1, DIGEST)) for k in KEYS[:3])
    rcs = (
        m.sign(KEYS[1], m.RoundChange(5, 2, 1, DIGEST)),
        m.sign(KEYS[2], m.RoundChange(5, 2, None, None)),
    )
    commits = tuple(m.sign(k, m.Commit(5, 1, DIGEST, b"s" * 96)) for k in KEYS[:3])
    return [
        m.pre_prepare(KEYS[0], 5, 2, b"value", DIGEST, rcs, prepares),
        m.prepare(KEYS[0], 5, 1, DIGEST),
        m.commit(KEYS[0], 5, 1, DIGEST, b"s" * 96),
        m.round_change(KEYS[0], 5, 2, 1, b"value", DIGEST, prepares),
        m.round_change(KEYS[3], 5, 2),
        m.encode(m.DecidedMsg(b"value", commits)),
    ]


def _payloads(samples: list[bytes]) -> list[bytes]:
    """Return the distinct signed payloads that ``samples`` carry."""
    raws = set()
    for data in samples:
        message = m.decode(data)
        for field in ("proposal", "prepare", "commit", "round_change"):
            if hasattr(message, field):
                raws.add(getattr(message, field).raw)
        for field in ("round_changes", "prepares", "commits"):
            raws.update(item.raw for item in getattr(message, field, ()))
    return sorted(raws)


SAMPLES = _samples()
PAYLOADS = _payloads(SAMPLES)
V, PRE_PREPARE, PREPARE, DECIDED = m.VERSION, 1, 2, 5
# Known bombs: a list count of 65,535; a byte string of 4 GiB; a value just over its limit; a
# list of 2**64 - 1 after a valid proposal; the value-sharing tag 28; an indefinite array; deep
# nesting; a version in a head longer than it needs.
BOMBS = [
    bytes([0x84, V, DECIDED, 0x40]) + head(4, 65_535),
    bytes([0x83, V, PREPARE, 0x82]) + head(2, 2**32 - 1),
    dumps([V, DECIDED, bytes(m.MAX_VALUE_BYTES + 1), []]),
    bytes([0x86, V, PRE_PREPARE]) + SAMPLES[1][3:] + b"\x40" + head(4, 2**64 - 1),
    bytes([0x83, V, PREPARE, 0xD8, 0x1C, 0x80]),
    bytes([0x9F, V, PREPARE, 0xFF]),
    b"\x81" * 1_000 + b"\x80",
    bytes([0x83, 0x18, V]) + SAMPLES[1][2:],
]
# CBOR heads a mutation writes over the bytes: lengths and counts at, near or far beyond the
# bounds, tags, indefinite lengths, a float, a break, a head longer than it needs.
LENGTHS = [head(2, n) for n in (0, 1, 45, 65, 2**32 - 1)]
COUNTS = [head(4, n) for n in (0, 1, 2, 129, 1_000, 65_535)]
ODD = [b"\xd8\x1c", b"\xd9\xd9\xf7", b"\x9f", b"\x5f", b"\xf9\x00\x00", b"\xff", b"\x18\x01"]


@st.composite
def mutated(draw) -> bytes:
    """A valid message with a few structural mutations applied."""
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(
            st.sampled_from(["length", "count", "odd", "insert", "delete", "flip", "kind", "tail"])
        )
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op in ("length", "count", "odd"):
            chunk = draw(st.sampled_from({"length": LENGTHS, "count": COUNTS, "odd": ODD}[op]))
            data[at : at + len(chunk)] = chunk
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "kind" and len(data) > 2:
            data[2] = draw(st.integers(0, 255))  # [version, kind, ...]: the kind's byte
        elif op == "tail":
            data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@st.composite
def mutated_payloads(draw) -> bytes:
    """A valid payload with one byte changed, inserted or deleted."""
    raw = bytearray(draw(st.sampled_from(PAYLOADS)))
    at = draw(st.integers(0, len(raw) - 1))
    op = draw(st.sampled_from(["set", "insert", "delete"]))
    if op == "set":
        raw[at] = draw(st.integers(0, 255))
    elif op == "insert":
        raw[at:at] = bytes([draw(st.integers(0, 255))])
    else:
        del raw[at]
    return bytes(raw)


def inputs():
    return st.one_of(st.binary(max_size=1_024), mutated(), st.sampled_from(BOMBS))


def check_only_message_errors(data: bytes, members: bool) -> None:
    is_member = MEMBERS.__contains__ if members else None
    try:
        message = m.decode(data, is_member)
    except m.MessageError:
        return
    assert m.encode(message) == data  # what decodes is canonical
    if is_member is not None:
        assert all(is_member(s) for s in m.signers(message))


def check_payload_only_message_errors(raw: bytes) -> None:
    try:
        payload = m.decode_payload(raw)
    except m.MessageError:
        return
    assert isinstance(payload, m.Proposal | m.Prepare | m.Commit | m.RoundChange)
    assert m.encode_payload(payload) == raw  # what decodes is canonical: signed as read


@settings(max_examples=CI_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs(), st.booleans())
@example(SAMPLES[0], True)
def test_decode__arbitrary_and_mutated_bytes__only_message_errors(data, members):
    check_only_message_errors(data, members)


@settings(max_examples=CI_EXAMPLES, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.sampled_from(PAYLOADS), mutated_payloads()))
def test_decode_payload__arbitrary_bytes__only_message_errors(raw):
    check_payload_only_message_errors(raw)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(inputs(), st.booleans())
def test_decode__many_arbitrary_and_mutated_bytes__only_message_errors(data, members):
    check_only_message_errors(data, members)


@pytest.mark.parametrize("bomb", BOMBS)
def test_decode__each_known_bomb__refused(bomb):
    with pytest.raises(m.MalformedMessage):
        m.decode(bomb, MEMBERS.__contains__)
