"""The lean yamux: same wire protocol as py-libp2p's, fewer scheduler trips, batched credit."""

import struct
from contextlib import asynccontextmanager

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.stream_muxer.muxer_multistream import MuxerMultistream
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import TYPE_WINDOW_UPDATE, Yamux

from offchain.net.host import identity_from_seed, listen_addrs_of, loopback_listen_addr, make_host
from offchain.net.libp2p_patches.buffered_transport import BufferedReads
from offchain.net.libp2p_patches.lean_yamux import LeanYamux, LeanYamuxStream
from offchain.net.limits import node_limits, router_limits

ECHO = TProtocol("/test/echo/1.0.0")
BIG = 4 * 1_024 * 1_024  # many times the 256 KiB yamux window


def _stock(host):  # type: ignore[no-untyped-def]
    """Make ``host`` use py-libp2p's own yamux, as a peer built without our host factory."""
    host.get_network().upgrader.muxer_multistream = MuxerMultistream(
        {TProtocol(YAMUX_PROTOCOL_ID): Yamux}, 10
    )
    return host


async def _read_exactly(stream, n: int) -> bytes:  # type: ignore[no-untyped-def]
    data = bytearray()
    while len(data) < n:
        chunk = await stream.read(n - len(data))
        assert chunk, "stream ended early"
        data += chunk
    return bytes(data)


async def _echo(stream) -> None:  # type: ignore[no-untyped-def]
    """Echo length-prefixed messages until the stream closes."""
    try:
        while True:
            size = struct.unpack(">I", await _read_exactly(stream, 4))[0]
            await stream.write(struct.pack(">I", size) + await _read_exactly(stream, size))
    except Exception:  # noqa: BLE001 - the client closing ends the echo
        pass
    finally:
        await stream.close()


@asynccontextmanager
async def _pair(lean_server: bool = True, lean_client: bool = True):
    server = make_host(identity_from_seed(), router_limits())
    client = make_host(identity_from_seed(), node_limits())
    if not lean_server:
        _stock(server)
    if not lean_client:
        _stock(client)
    server.set_stream_handler(ECHO, _echo)
    async with server.run([loopback_listen_addr()]), client.run([]):
        await client.connect(info_from_p2p_addr(listen_addrs_of(server)[0]))
        yield client, server


async def _round_trip(stream, payload: bytes) -> bytes:  # type: ignore[no-untyped-def]
    await stream.write(struct.pack(">I", len(payload)) + payload)
    size = struct.unpack(">I", await _read_exactly(stream, 4))[0]
    return await _read_exactly(stream, size)


def _muxed(host, peer):  # type: ignore[no-untyped-def]
    (conn,) = host.get_network().get_connections(peer)
    return conn.muxed_conn


def _count_window_updates(muxed) -> list[int]:  # type: ignore[no-untyped-def]
    """Count the credit-only WINDOW_UPDATE frames (no SYN/ACK/FIN) ``muxed`` writes from now on."""
    sent = [0]
    write = muxed._write_frame

    async def counting(data: bytes) -> None:
        if len(data) >= 12 and data[1] == TYPE_WINDOW_UPDATE and data[2:4] == b"\0\0":
            sent[0] += 1
        await write(data)

    muxed._write_frame = counting
    return sent


async def test_host__connections_on_both_ends_use_the_lean_muxer():
    async with _pair() as (client, server):
        assert type(_muxed(client, server.get_id())) is LeanYamux
        assert type(_muxed(server, client.get_id())) is LeanYamux
        stream = await client.new_stream(server.get_id(), [ECHO])
        assert await _round_trip(stream, b"hello") == b"hello"
        assert type(stream.muxed_stream) is LeanYamuxStream
        await stream.close()


@pytest.mark.parametrize(
    ("lean_server", "lean_client"), [(True, False), (False, True), (True, True)]
)
async def test_lean_yamux__interoperates_with_stock_yamux_across_many_windows(
    lean_server, lean_client
):
    payload = bytes(range(256)) * (BIG // 256)
    async with _pair(lean_server, lean_client) as (client, server):
        assert (type(_muxed(client, server.get_id())) is LeanYamux) == lean_client
        with trio.fail_after(60):
            stream = await client.new_stream(server.get_id(), [ECHO])
            for _ in range(2):
                assert await _round_trip(stream, payload) == payload
            for i in range(50):
                assert await _round_trip(stream, b"%d" % i) == b"%d" % i
            await stream.close()


async def test_lean_yamux__small_messages_return_credit_in_batches_not_per_read():
    async with _pair(lean_server=True, lean_client=False) as (client, server):
        lean_side = _count_window_updates(_muxed(server, client.get_id()))
        stock_side = _count_window_updates(_muxed(client, server.get_id()))
        stream = await client.new_stream(server.get_id(), [ECHO])
        with trio.fail_after(30):
            for _ in range(200):
                assert await _round_trip(stream, b"x" * 100) == b"x" * 100
        await stream.close()
    # 200 x 104 bytes is far below half of the 256 KiB window: nothing to return yet.
    assert lean_side[0] == 0
    # py-libp2p's own policy credits (almost) every read.
    assert stock_side[0] >= 100


async def test_lean_yamux__credit_returned_once_half_the_window_is_read():
    async with _pair() as (client, server):
        lean_side = _count_window_updates(_muxed(server, client.get_id()))
        stream = await client.new_stream(server.get_id(), [ECHO])
        with trio.fail_after(30):
            assert await _round_trip(stream, b"y" * BIG) == b"y" * BIG
        await stream.close()
    # 4 MiB in half-window (128 KiB) batches: tens of updates, not thousands of reads' worth.
    assert 8 <= lean_side[0] <= 64


class _Chunks:
    """A stream that returns the given chunks, one per read, as a socket would."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.reads = 0
        self.name = "inner"

    async def read(self, n: int | None = None) -> bytes:
        self.reads += 1
        return self.chunks.pop(0) if self.chunks else b""


async def test_buffered_reads__frames_that_arrived_together_cost_one_socket_read():
    inner = _Chunks(b"\x00\x03abc\x00\x02de", b"\x00\x01f")
    stream = BufferedReads(inner)
    assert await stream.read(2) == b"\x00\x03"
    assert await stream.read(3) == b"abc"
    assert await stream.read(2) == b"\x00\x02"
    assert await stream.read(5) == b"de"  # short read: only what is buffered
    assert inner.reads == 1
    assert await stream.read(None) == b"\x00\x01f"
    assert await stream.read(4) == b""  # end of stream passes through
    assert stream.name == "inner"  # everything else is the wrapped stream's
