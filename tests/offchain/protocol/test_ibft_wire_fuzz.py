"""Fuzzing the IBFT message decoder: whatever the bytes, only ``MessageError`` comes out."""

import struct

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from offchain.crypto.keys import generate_keypair
from offchain.protocol import ibft_wire as m

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


SAMPLES = _samples()
# Known bombs: a list count of 65,535, a blob length of 4 GiB, a value just over its limit.
BOMBS = [
    bytes([m.VERSION, m.Kind.DECIDED]) + struct.pack(">I", 0) + b"\xff\xff",
    bytes([m.VERSION, m.Kind.PREPARE]) + b"\xff\xff\xff\xff",
    bytes([m.VERSION, m.Kind.DECIDED]) + struct.pack(">I", m.MAX_VALUE_BYTES + 1),
    bytes([m.VERSION, m.Kind.PRE_PREPARE]) + SAMPLES[1][2:] + struct.pack(">I", 0) + b"\xff" * 4,
]


@st.composite
def mutated(draw) -> bytes:
    """A valid message with a few structural mutations applied."""
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["length", "count", "insert", "delete", "flip", "kind", "tail"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "length" and at + 4 <= len(data):
            data[at : at + 4] = struct.pack(">I", draw(st.sampled_from([0, 1, 45, 2**32 - 1])))
        elif op == "count" and at + 2 <= len(data):
            data[at : at + 2] = struct.pack(">H", draw(st.sampled_from([0, 129, 1_000, 65_535])))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "kind" and len(data) > 1:
            data[1] = draw(st.integers(0, 255))
        elif op == "tail":
            data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


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


@settings(max_examples=CI_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs(), st.booleans())
@example(SAMPLES[0], True)
def test_decode__arbitrary_and_mutated_bytes__only_message_errors(data, members):
    check_only_message_errors(data, members)


@settings(max_examples=CI_EXAMPLES, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.sampled_from([s[6:] for s in SAMPLES])))
def test_decode_payload__arbitrary_bytes__only_message_errors(raw):
    check_payload_only_message_errors(raw)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(inputs(), st.booleans())
def test_decode__many_arbitrary_and_mutated_bytes__only_message_errors(data, members):
    check_only_message_errors(data, members)
