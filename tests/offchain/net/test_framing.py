import struct
from dataclasses import replace

import cbor2
import pytest
import trio

from offchain.net.framing import FrameReader, receive
from offchain.protocol.frames import (
    FRAME_VERSION,
    MAX_BODY,
    FrameError,
    MsgType,
    NonCanonical,
    Oversized,
    Truncated,
    UnknownType,
    UnknownVersion,
    decode_frame,
    encode_body,
    encode_frame,
)
from offchain.protocol.wire import (
    MAX_ERROR,
    Hello,
    Load,
    Ping,
    Pong,
    Request,
    Response,
    SignedSummary,
    Summary,
    encode,
)

ALL = frozenset(MsgType)

SAMPLES = [
    Hello(("echo", "sleep"), 7, 68, 3, b"\x01" * 10),
    Load(5),
    Ping(2**40),
    Pong(9, 0),
    Request(b"r" * 16, "echo", b"\x00payload", ("12D3KooWabc",), 5_000),
    Response(b"r" * 16, True, b"out", "", "", "12D3KooWnode", 1),
    SignedSummary(
        encode_body(Summary("12D3KooWrouter", 3, {"12D3KooWother": 1500}, {"echo": 12}).to_map()),
        b"\x01" * 65,
        b"\x02" * 200,
    ),
]


class ChunkedStream:
    """A stream that hands out its bytes a few at a time, then ends."""

    def __init__(self, data: bytes, chunk: int = 3) -> None:
        self.data = data
        self.chunk = chunk

    async def read(self, n: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        size = min(self.chunk, n or self.chunk)
        out, self.data = self.data[:size], self.data[size:]
        return out


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_encode_decode__every_message__round_trips(message):
    msg_type, value = decode_frame(encode(message), ALL)
    assert msg_type == message.TYPE
    assert type(message).from_map(value) == message


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_encode__same_value__same_bytes(message):
    rebuilt = type(message).from_map(decode_frame(encode(message), ALL)[1])
    assert encode(rebuilt) == encode(message)


def test_encode_body__key_order__does_not_change_bytes():
    assert encode_body({"b": 1, "a": 2}) == encode_body({"a": 2, "b": 1})


def test_decode__non_canonical_body__rejected():
    body = cbor2.dumps({"queue_depth": 1})
    # The same map with the integer in a needlessly long form (0x19 = two-byte uint).
    long_form = body[:-1] + b"\x19\x00\x01"
    frame = struct.pack(">BBI", FRAME_VERSION, MsgType.LOAD, len(long_form)) + long_form
    with pytest.raises(NonCanonical):
        decode_frame(frame, ALL)


def test_decode__unknown_version__rejected():
    frame = bytearray(encode(Load(1)))
    frame[0] = 9
    with pytest.raises(UnknownVersion) as info:
        decode_frame(bytes(frame), ALL)
    assert info.value.reason == "unknown-version"


def test_decode__unknown_type__rejected():
    frame = bytearray(encode(Load(1)))
    frame[1] = 200
    with pytest.raises(UnknownType):
        decode_frame(bytes(frame), ALL)


def test_decode__type_not_expected_on_stream__rejected():
    with pytest.raises(UnknownType):
        decode_frame(encode(Load(1)), frozenset({MsgType.REQUEST}))


def test_decode__declared_length_over_limit__rejected_from_header():
    header = struct.pack(">BBI", FRAME_VERSION, MsgType.PING, MAX_BODY[MsgType.PING] + 1)
    with pytest.raises(Oversized):
        decode_frame(header + b"\x00" * (MAX_BODY[MsgType.PING] + 1), ALL)


def test_encode__body_over_limit__refused():
    with pytest.raises(Oversized):
        encode_frame(MsgType.LOAD, {"pad": b"x" * 1_000})


def test_decode__garbage_body__refused_with_the_decoders_reason():
    frame = struct.pack(">BBI", FRAME_VERSION, MsgType.LOAD, 3) + b"\xff\xff\xff"
    with pytest.raises(FrameError) as info:
        decode_frame(frame, ALL)
    assert info.value.reason == "cbor-indefinite"  # 0xff: a break code, outside any item


def test_decode__body_not_a_map__malformed():
    body = cbor2.dumps([1, 2])
    frame = struct.pack(">BBI", FRAME_VERSION, MsgType.LOAD, len(body)) + body
    with pytest.raises(FrameError):
        decode_frame(frame, ALL)


def test_decode__short_frame__truncated():
    with pytest.raises(Truncated):
        decode_frame(encode(Load(1))[:-1], ALL)


@pytest.mark.parametrize(
    ("cls", "value"),
    [
        (Load, {"queue_depth": -1}),
        (Load, {"queue_depth": True}),
        (Load, {"queue_depth": 1, "extra": 0}),
        (Load, {}),
        (
            Request,
            {
                "request_id": b"short",
                "workload": "echo",
                "payload": b"",
                "path": [],
                "timeout_ms": 1,
            },
        ),
        (
            Request,
            {"request_id": b"r" * 16, "workload": "", "payload": b"", "path": [], "timeout_ms": 1},
        ),
        (
            Request,
            {
                "request_id": b"r" * 16,
                "workload": "echo",
                "payload": b"",
                "path": ["a"] * 9,
                "timeout_ms": 1,
            },
        ),
        (Hello, {"workloads": [1], "e_power": 1, "capacity": 1, "queue_depth": 0, "binding": b""}),
        (Summary, {"router": "r", "seq": 1, "links": {"x": -1}, "workloads": {}}),
        (Summary, {"router": "r" * 129, "seq": 1, "links": {}, "workloads": {}}),
        (SignedSummary, {"body": b"", "signature": "not bytes", "binding": b""}),
        (SignedSummary, {"body": b"", "signature": b"", "binding": b"", "extra": 1}),
    ],
)
def test_from_map__bad_field__frame_error(cls, value):
    with pytest.raises(FrameError):
        cls.from_map(value)


async def test_frame_reader__frames_split_across_reads__each_read_whole():
    data = encode(Ping(1)) + encode(Pong(1, 4)) + encode(Load(2))
    reader = FrameReader(ChunkedStream(data))
    got = [await receive(reader, Ping, Pong, Load) for _ in range(3)]
    assert got == [Ping(1), Pong(1, 4), Load(2)]
    with pytest.raises(Truncated):
        await receive(reader, Ping)


class HeaderThenSilence:
    """A stream that sends a header and then nothing, without ending."""

    def __init__(self, header: bytes) -> None:
        self.header = header

    async def read(self, n: int | None = None) -> bytes:
        if self.header:
            out, self.header = self.header, b""
            return out
        await trio.sleep_forever()
        raise AssertionError("unreachable")


async def test_frame_reader__oversized_header__raises_without_waiting_for_body():
    header = struct.pack(">BBI", FRAME_VERSION, MsgType.REQUEST, 2**31)
    with trio.fail_after(5):
        with pytest.raises(Oversized):
            await FrameReader(HeaderThenSilence(header)).read(frozenset({MsgType.REQUEST}))


async def test_receive__relayed_messages__keep_their_frame_and_a_change_drops_it():
    request, response = SAMPLES[4], SAMPLES[5]
    frames = encode(request) + encode(response)
    reader = FrameReader(ChunkedStream(frames, chunk=7))
    got_request = await receive(reader, Request)
    got_response = await receive(reader, Response)
    assert got_request.frame == encode(request) and encode(got_request) is got_request.frame
    assert got_response.frame == encode(response)
    changed = replace(got_response, node="12D3KooWother")
    assert changed.frame is None
    assert encode(changed) == encode(replace(response, node="12D3KooWother"))
    assert got_request == request and "frame" not in repr(got_request)


async def test_receive__message_trimmed_on_reading__does_not_keep_the_frame():
    # A peer's over-long error message is cut to MAX_ERROR on reading: the frame read is then
    # not the message's encoding, and passing it on would pass on the untrimmed text.
    long = Response(b"r" * 16, False, error="busy", message="m" * (MAX_ERROR + 10))
    value = long.to_map() | {"message": "m" * (MAX_ERROR + 10)}
    frame = encode_frame(MsgType.RESPONSE, value)
    got = await receive(FrameReader(ChunkedStream(frame, chunk=64)), Response)
    assert got.frame is None and len(got.message) == MAX_ERROR
    assert encode(got) != frame
