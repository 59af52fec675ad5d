"""IBFT wire messages: canonical round trips, signatures, and rejection of malformed bytes."""

import pytest

from offchain.crypto.keys import generate_keypair
from offchain.protocol import ibft_wire as m
from offchain.protocol.canonical_cbor import dumps, loads

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
    fields = loads(sample_messages()["prepare"])  # [VERSION, kind, signed prepare]
    with pytest.raises(m.MalformedMessage, match="version"):
        m.decode(dumps([m.VERSION - 1, *fields[1:]]))
    with pytest.raises(m.MalformedMessage, match="kind"):
        m.decode(dumps([fields[0], 77, *fields[2:]]))
    with pytest.raises(m.MalformedMessage):
        m.decode("text")


def test_decode__a_payload_of_another_kind_is_malformed():
    # a COMMIT's signed payload inside a PREPARE envelope
    commit = loads(sample_messages()["commit"])
    with pytest.raises(m.MalformedMessage, match="PREPARE"):
        m.decode(dumps([m.VERSION, int(m.Kind.PREPARE), *commit[2:]]))


def test_decode__oversized_message_is_malformed():
    with pytest.raises(m.MalformedMessage, match="too large"):
        m.decode(dumps([m.VERSION, int(m.Kind.DECIDED), bytes(m.MAX_MESSAGE_BYTES), []]))
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
    # [kind, height, round, digest]: the array head, then the kind
    assert prepare.raw[2:] == proposal.raw[2:] and prepare.raw[1] != proposal.raw[1]
    assert m.signing_hash(prepare.raw) != m.signing_hash(proposal.raw)


def test_payloads__reject_bad_digests_and_ranges():
    with pytest.raises(m.MalformedMessage):
        m.prepare(KEYS[0], 5, 1, b"short")
    with pytest.raises(m.MalformedMessage):
        m.prepare(KEYS[0], 2**64, 1, DIGEST)
    with pytest.raises(m.MalformedMessage):
        m.encode_payload(m.RoundChange(5, 2, None, DIGEST))


def test_wire_form__canonical_cbor_arrays_with_the_signed_bytes_inside():
    prepare = m.sign(KEYS[0], m.Prepare(5, 1, DIGEST))
    assert loads(prepare.raw) == [int(m.Kind.PREPARE), 5, 1, DIGEST]
    assert loads(m.prepare(KEYS[0], 5, 1, DIGEST)) == [
        m.VERSION,
        int(m.Kind.PREPARE),
        [prepare.raw, prepare.signature],
    ]
    empty = m.encode_payload(m.RoundChange(5, 2, None, None))
    assert loads(empty) == [int(m.Kind.ROUND_CHANGE), 5, 2, None, None]
    assert m.signing_hash(prepare.raw) == m.keccak(m.DOMAIN + bytes([m.VERSION]) + prepare.raw)


P, RC, C = int(m.Kind.PREPARE), int(m.Kind.ROUND_CHANGE), int(m.Kind.COMMIT)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (P, bytes([0x84, P, 0x19, 0x00, 0x05, 0x01, 0x58, 0x20]) + DIGEST),  # a long head
        (P, dumps([P, 5, True, DIGEST])),  # a boolean for the round
        (P, dumps([P, 5, -1, DIGEST])),
        (P, dumps([P, 5, 1, DIGEST, b""])),  # one field too many
        (P, dumps([P, 5, 1, DIGEST[:31]])),
        (RC, dumps([RC, 5, 2, 1, None])),  # a prepared round without its digest
        (C, dumps([C, 5, 1, DIGEST, "seal"])),
        (C, dumps([C, 5, 1, DIGEST, bytes(m.MAX_SEAL_BYTES + 1)])),
        (P, dumps({"kind": P})),
    ],
)
def test_decode__a_validly_signed_payload_that_is_not_canonical__is_malformed(kind, raw):
    signature = KEYS[0].sign_hash(m.signing_hash(raw))
    with pytest.raises(m.MalformedMessage):
        m.decode(dumps([m.VERSION, kind, [raw, signature]]))
