"""IBFT wire messages: canonical round trips, signatures, and rejection of malformed bytes."""

import pytest

from offchain.crypto.keys import generate_keypair
from offchain.protocol import ibft_wire as m

KEYS = [generate_keypair(f"msg-{i}".encode()) for i in range(4)]
DIGEST = bytes(range(32))


def sample_messages():
    prepares = tuple(m.sign(k, m.Prepare(5, 1, DIGEST)) for k in KEYS[:3])
    rcs = (
        m.sign(KEYS[1], m.RoundChange(5, 2, 1, DIGEST)),
        m.sign(KEYS[2], m.RoundChange(5, 2, None, None)),
    )
    commits = tuple(m.sign(k, m.Commit(5, 1, DIGEST, b"s" * 96)) for k in KEYS[:3])
    return {
        "pre_prepare": m.pre_prepare(KEYS[0], 5, 2, b"value", DIGEST, rcs, prepares),
        "prepare": m.prepare(KEYS[0], 5, 1, DIGEST),
        "commit": m.commit(KEYS[0], 5, 1, DIGEST, b"s" * 96),
        "commit_without_seal": m.commit(KEYS[0], 5, 1, DIGEST, b""),
        "round_change": m.round_change(KEYS[0], 5, 2, 1, b"value", DIGEST, prepares),
        "round_change_empty": m.round_change(KEYS[0], 5, 2),
        "decided": m.encode(m.DecidedMsg(b"value", commits)),
    }


@pytest.mark.parametrize("name", list(sample_messages()))
def test_encode_decode__round_trips_canonically(name):
    data = sample_messages()[name]
    message = m.decode(data)
    assert m.encode(message) == data


def test_decode__recovers_each_signer():
    message = m.decode(sample_messages()["pre_prepare"])
    assert message.proposal.sender == KEYS[0].address
    assert [p.sender for p in message.prepares] == [k.address for k in KEYS[:3]]
    assert [rc.sender for rc in message.round_changes] == [KEYS[1].address, KEYS[2].address]
    assert message.round_changes[0].payload == m.RoundChange(5, 2, 1, DIGEST)


@pytest.mark.parametrize("name", list(sample_messages()))
def test_decode__every_truncation_and_any_trailing_byte_is_malformed(name):
    data = sample_messages()[name]
    for cut in range(len(data)):
        with pytest.raises(m.MessageError):
            m.decode(data[:cut])
    with pytest.raises(m.MalformedMessage, match="trailing"):
        m.decode(data + b"\x00")


def test_decode__unknown_version_or_kind_is_malformed():
    data = sample_messages()["prepare"]
    with pytest.raises(m.MalformedMessage, match="version"):
        m.decode(bytes([2]) + data[1:])
    with pytest.raises(m.MalformedMessage, match="kind"):
        m.decode(data[:1] + bytes([77]) + data[2:])
    with pytest.raises(m.MalformedMessage):
        m.decode("text")


def test_decode__a_payload_of_another_kind_is_malformed():
    # a COMMIT's signed payload inside a PREPARE envelope
    commit = sample_messages()["commit"]
    with pytest.raises(m.MalformedMessage, match="PREPARE"):
        m.decode(bytes([m.VERSION, m.Kind.PREPARE]) + commit[2:])


def test_decode__oversized_message_is_malformed():
    with pytest.raises(m.MalformedMessage, match="too large"):
        m.decode(bytes([m.VERSION, m.Kind.PREPARE]) + bytes(m.MAX_MESSAGE_BYTES))
    with pytest.raises(m.MalformedMessage):
        m.commit(KEYS[0], 5, 1, DIGEST, b"s" * (m.MAX_SEAL_BYTES + 1))


def test_decode__a_flipped_signature_bit_changes_or_loses_the_signer():
    data = bytearray(sample_messages()["prepare"])
    data[-1] ^= 0x01  # the recovery id: 27 <-> 28 recovers another key
    try:
        sender = m.decode(bytes(data)).prepare.sender
    except m.BadSignature:
        sender = None
    assert sender != KEYS[0].address
    data[-1] = 99  # not a recovery id at all
    with pytest.raises(m.MessageError):
        m.decode(bytes(data))


def test_signatures__are_separated_by_kind():
    prepare = m.sign(KEYS[0], m.Prepare(5, 1, DIGEST))
    proposal = m.sign(KEYS[0], m.Proposal(5, 1, DIGEST))
    assert prepare.raw[1:] == proposal.raw[1:] and prepare.raw[0] != proposal.raw[0]
    assert m.signing_hash(prepare.raw) != m.signing_hash(proposal.raw)


def test_payloads__reject_bad_digests_and_ranges():
    with pytest.raises(m.MalformedMessage):
        m.prepare(KEYS[0], 5, 1, b"short")
    with pytest.raises(m.MalformedMessage):
        m.prepare(KEYS[0], 2**64, 1, DIGEST)
    with pytest.raises(m.MalformedMessage):
        m.encode_payload(m.RoundChange(5, 2, None, DIGEST))
