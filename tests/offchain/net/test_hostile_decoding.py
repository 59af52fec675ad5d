"""Every decoder that reads a peer's bytes: only the project's own errors ever come out.

Fuzzed with arbitrary bytes and with structured mutations of valid frames (a length changed, a
key added, a tag inserted, nesting deepened, a list inflated), plus known bombs as fixed
examples: cyclic and shared-reference values (CBOR tags 28 and 29), deep nesting, and lengths
of gigabytes. Memory spent on a bomb is checked to stay linear in its size.
"""

import struct
import tracemalloc

import cbor2
import pytest
import trio
from hypothesis import example, given, settings
from hypothesis import strategies as st
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from bench.hostile_peer import BOMBS, TOKENS
from offchain.chain.identity import (
    classify_peer,
    decode_binding,
    decode_endorsed_binding,
    encode_binding,
    encode_endorsed_binding,
    make_binding,
    make_endorsed_binding,
)
from offchain.crypto.keys import generate_keypair
from offchain.net.framing import FrameReader, receive
from offchain.net.host import identity_from_seed, make_host
from offchain.net.limits import node_limits
from offchain.protocol import canonical_cbor
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.errors import InputRejected
from offchain.protocol.frames import (
    HEADER_SIZE,
    FrameError,
    MsgType,
    decode_body,
    decode_frame,
    encode_body,
)
from offchain.protocol.wire import (
    MESSAGE_CLASSES,
    Hello,
    Join,
    Load,
    Ping,
    Pong,
    RecordBatch,
    Request,
    Response,
    SignedSummary,
    Summary,
    encode,
)
from offchain.routers import signing
from offchain.routers.gossip import Broadcast
from tests.fuzzing import examples

ALL = frozenset(MsgType)
ETH = generate_keypair(b"\x07" * 32)
LIBP2P = identity_from_seed(b"\x08" * 32)
PEER = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X"
SUMMARY_BODY = encode_body(
    Summary("12D3KooWrouter", 3, {"12D3KooWother": 1500}, {"echo": 12}).to_map()
)

VALID = [
    encode(m)
    for m in (
        Hello(("echo", "sleep"), 7, 68, 3, b"\x01" * 10),
        Load(5),
        Ping(2**40),
        Pong(9, 0),
        Request(b"r" * 16, "echo", b"\x00payload", ("12D3KooWabc",), 5_000),
        Response(b"r" * 16, True, b"out", "", "", "12D3KooWnode", 1),
        SignedSummary(SUMMARY_BODY, b"\x01" * 65, b"\x02" * 200),
        Request(b"r" * 16, "echo", b"in", (), 5_000, b"\xa0", b"\x01" * 65, b"\x02" * 20),
        Response(b"r" * 16, True, b"out", "", "", "node", 0, b"\xa0", b"\x03" * 65),
        RecordBatch((b"\xa5" + b"\x00" * 100,)),
        Join(b"\x03" * 100),
    )
]


def _reframe(frame: bytes, body: bytes) -> bytes:
    """Return ``frame``'s header with the length of ``body``, then ``body``."""
    return frame[:2] + struct.pack(">I", len(body)) + body


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """Return a valid frame with one structured mutation, its header usually still consistent."""
    frame = draw(st.sampled_from(VALID))
    body = frame[HEADER_SIZE:]
    kind = draw(
        st.sampled_from(
            ["flip", "insert", "delete", "length", "key", "tag", "deepen", "inflate", "token"]
        )
    )
    if kind == "flip" and body:
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    elif kind == "insert":
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.binary(min_size=1, max_size=16)) + body[at:]
    elif kind == "delete" and body:
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + body[at + draw(st.integers(1, 16)) :]
    elif kind == "length":
        return frame[:2] + struct.pack(">I", draw(st.integers(0, 2**32 - 1))) + body
    elif kind == "key":
        value = cbor2.loads(body)
        value[draw(st.text(max_size=8))] = draw(st.integers() | st.binary(max_size=8))
        body = cbor2.dumps(value)  # not canonical order, and perhaps a key we do not know
    elif kind in ("tag", "token"):
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.sampled_from(TOKENS)) + body[at:]
    elif kind == "deepen":
        value = cbor2.loads(body)
        key = draw(st.sampled_from(sorted(value)))
        depth = draw(st.integers(1, 40))
        for _ in range(depth):
            value[key] = [value[key]]
        body = cbor2.dumps(value, canonical=True)
    elif kind == "inflate":
        # A list or map head whose count is far larger than what follows.
        heads = [i for i, b in enumerate(body) if b >> 5 in (4, 5)]
        if heads:
            at = draw(st.sampled_from(heads))
            major = body[at] >> 5
            count = draw(st.sampled_from([24, 255, 65_535, 2**32 - 1, 2**64 - 1]))
            body = body[:at] + canonical_cbor.head(major, count) + body[at + 1 :]
    return _reframe(frame, body)


frames = (
    mutated_frames()
    | st.binary(max_size=200)
    | st.sampled_from(BOMBS).map(lambda bomb: _reframe(VALID[1], bomb))
)


def parse_message(frame: bytes) -> object:
    """Decode a frame as an agent does: the frame, then its message's fields."""
    msg_type, value = decode_frame(frame, ALL)
    return MESSAGE_CLASSES[msg_type].from_map(value)


# ---------------------------------------------------------------------------- the CBOR codec


@pytest.mark.parametrize("bomb", BOMBS, ids=range(len(BOMBS)))
def test_loads__known_bombs__refused_with_linear_memory(bomb: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(canonical_cbor.CborError):
            canonical_cbor.loads(bomb)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 + 4 * len(bomb)


@settings(max_examples=examples(500), deadline=None)
@given(st.binary(max_size=300) | st.sampled_from(BOMBS))
def test_loads__any_bytes__canonical_value_or_cbor_error(data: bytes) -> None:
    try:
        value = canonical_cbor.loads(data)
    except canonical_cbor.CborError as exc:
        assert exc.reason.startswith("cbor-")
        return
    # Whatever is accepted is the one canonical encoding of its value.
    assert canonical_cbor.dumps(value) == data


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=50)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=examples(300), deadline=None)
@given(values)
def test_loads__of_dumps__same_value(value: object) -> None:
    assert canonical_cbor.loads(canonical_cbor.dumps(value)) == value


@pytest.mark.parametrize("value", [1.5, 2**64, -(2**64) - 1, {1: 2}, {b"k": 1}, {"a": 0.5}])
def test_dumps__value_outside_the_message_subset__type_error(value: object) -> None:
    with pytest.raises(TypeError):
        canonical_cbor.dumps(value)


def test_loads__nesting_at_the_bound__accepted_one_deeper__refused() -> None:
    deepest = b"\x81" * canonical_cbor.MAX_DEPTH + b"\x00"
    assert canonical_cbor.loads(deepest) is not None
    with pytest.raises(canonical_cbor.CborError) as info:
        canonical_cbor.loads(b"\x81" + deepest)
    assert info.value.reason == "cbor-too-deep"


def test_decode_body__cyclic_value__frame_error_tag() -> None:
    with pytest.raises(FrameError) as info:
        decode_body(bytes.fromhex("d81ca16161d81d00"))
    assert info.value.reason == "cbor-tag"


# ---------------------------------------------------------------------------- frames and messages


@settings(max_examples=examples(1_000), deadline=None)
@given(frames)
@example(_reframe(VALID[0], BOMBS[0]))
@example(VALID[0][:2] + b"\xff\xff\xff\xff")
def test_frames__any_input__only_frame_errors(frame: bytes) -> None:
    try:
        parse_message(frame)
    except FrameError as exc:
        assert exc.reason
    except InputRejected as exc:  # a subclass of ours other than FrameError: still ours
        pytest.fail(f"decoding raised {type(exc).__name__}, expected a FrameError")


@pytest.mark.parametrize("frame", VALID, ids=lambda f: MsgType(f[1]).name)
def test_frames__valid__decode(frame: bytes) -> None:
    assert encode(parse_message(frame)) == frame


class _Bytes:
    """A stream that hands out fixed bytes in chunks, then ends."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._data = data
        self._chunk = chunk

    async def read(self, n: int | None = None) -> bytes:
        out, self._data = self._data[: self._chunk], self._data[self._chunk :]
        return out


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(frames, min_size=1, max_size=4), st.integers(1, 64))
def test_reader__stream_of_hostile_frames__only_frame_errors(
    chunks: list[bytes], size: int
) -> None:
    async def read_all() -> None:
        reader = FrameReader(_Bytes(b"".join(chunks), size))
        while True:
            await receive(reader, *MESSAGE_CLASSES.values())

    with pytest.raises(FrameError):
        trio.run(read_all)


# ---------------------------------------------------------------------------- bindings


BINDING = encode_binding(make_binding(ETH, PEER))
ENDORSED = encode_endorsed_binding(
    make_endorsed_binding(ETH, LIBP2P.private_key, ID.from_pubkey(LIBP2P.public_key).to_string())
)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """Return ``valid`` with bytes flipped, inserted or deleted, or a token inserted."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "token"]))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at:at] = draw(st.sampled_from(TOKENS))
    return bytes(data)


@settings(max_examples=examples(300), deadline=None)
@given(mutated(BINDING) | st.binary(max_size=200) | st.sampled_from(BOMBS))
def test_binding__any_input__binding_error_or_unstaked(data: bytes) -> None:
    try:
        decode_binding(data)
    except InputRejected:
        pass
    address, staked = classify_peer(data, PEER, lambda _address: True)
    assert staked == bool(address)


@settings(max_examples=examples(300), deadline=None)
@given(mutated(ENDORSED) | st.binary(max_size=600) | st.sampled_from(BOMBS))
def test_endorsed_binding__any_input__only_binding_errors(data: bytes) -> None:
    try:
        decode_endorsed_binding(data)
    except InputRejected:
        pass


# ---------------------------------------------------------------------------- summaries


@settings(max_examples=examples(300), deadline=None)
@given(
    mutated(SUMMARY_BODY) | st.binary(max_size=200) | st.sampled_from(BOMBS),
    mutated(ENDORSED) | st.just(ENDORSED) | st.binary(max_size=100),
    st.binary(min_size=60, max_size=70),
)
def test_summary__any_body_binding_signature__only_summary_rejected(
    body: bytes, binding: bytes, signature: bytes
) -> None:
    signed = SignedSummary(body, signature, binding)
    with pytest.raises(signing.SummaryRejected) as info:
        signing.verify_summary(signed, signing.BindingCache(), 0.0, is_router=lambda _a: True)
    assert info.value.reason in (*signing.REASONS, signing.NOT_OWN_SUMMARY)


# ---------------------------------------------------------------------------- gossip


def _gossip_message(data: bytes, origin: bytes, topics: list[str]) -> rpc_pb2.Message:
    return rpc_pb2.Message(from_id=origin, data=data, seqno=b"\x00" * 8, topicIDs=topics)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.sampled_from(VALID[7:9]).flatmap(lambda f: mutated_frames() | st.just(f))
    | st.binary(max_size=300)
    | st.sampled_from(BOMBS),
    st.sampled_from([[protocols.TOPIC_RECORDS], [], [protocols.TOPIC_RECORDS] * 2]),
    st.booleans(),
)
def test_gossip__any_message__validated_without_raising(
    data: bytes, topics: list[str], known: bool
) -> None:
    async def validate() -> bool:
        host = make_host(identity_from_seed(b"\x09" * 32), node_limits())
        forwarder = make_host(identity_from_seed(b"\x0a" * 32), node_limits()).get_id()
        broadcast = Broadcast(host, known_origin=lambda _peer: known)
        broadcast.admitted[forwarder] = ETH.address
        return broadcast._validate(
            forwarder, _gossip_message(data, b"\x00\x24" + b"\x01" * 36, topics)
        )

    accepted = trio.run(validate)
    if accepted:
        decode_frame(data, frozenset({MsgType.RECORD, MsgType.RECORDS}))
