"""Each py-libp2p patch, checked on live connections between real hosts on loopback.

The patches (offchain/net/libp2p_patches) reach into py-libp2p 0.8.1's internals; these tests
show on real connections that each took effect, and that each refuses to apply to a library
whose shape it was not written for.
"""

from contextlib import asynccontextmanager

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.identity.identify.identify import ID as IDENTIFY
from libp2p.network.exceptions import SwarmException
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.stream_muxer.yamux.yamux import Yamux, YamuxStream

from offchain.net import libp2p_patches
from offchain.net.host import (
    forget_failed_dials,
    identity_from_seed,
    listen_addrs_of,
    loopback_listen_addr,
    make_host,
)
from offchain.net.libp2p_patches import (
    buffered_transport,
    guard,
    lean_yamux,
    no_identify,
    task_index,
)
from offchain.net.libp2p_patches.buffered_transport import BufferedReads
from offchain.net.libp2p_patches.guard import PatchError
from offchain.net.libp2p_patches.lean_yamux import LeanYamux, LeanYamuxStream, lean_net_stream
from offchain.net.limits import node_limits, router_limits
from offchain.net.no_yield import NoYieldLock, NoYieldSemaphore
from tests.waiting import wait_until

ECHO = TProtocol("/test/patch-echo/1.0.0")


async def _echo(stream) -> None:  # type: ignore[no-untyped-def]
    stream = lean_net_stream(stream)
    try:
        while data := await stream.read(1_024):
            await stream.write(data)
    except Exception:  # noqa: BLE001 - the client resetting ends the echo
        pass


@asynccontextmanager
async def _connected(server, client):  # type: ignore[no-untyped-def]
    server.set_stream_handler(ECHO, _echo)
    async with server.run([loopback_listen_addr()]), client.run([]):
        await client.connect(info_from_p2p_addr(listen_addrs_of(server)[0]))
        yield


async def _round_trip(client, server, payload: bytes):  # type: ignore[no-untyped-def]
    stream = lean_net_stream(await client.new_stream(server.get_id(), [ECHO]))
    await stream.write(payload)
    got = b""
    while len(got) < len(payload):
        got += await stream.read(len(payload) - len(got))
    assert got == payload
    return stream


def _muxed(host, peer):  # type: ignore[no-untyped-def]
    (conn,) = host.get_network().get_connections(peer)
    return conn.muxed_conn


async def test_lean_yamux__live_connection_has_locks_that_do_not_yield_and_buffered_reads():
    server = make_host(identity_from_seed(), router_limits())
    client = make_host(identity_from_seed(), node_limits())
    async with _connected(server, client):
        stream = await _round_trip(client, server, b"lock types" * 100)
        for host, peer in ((client, server.get_id()), (server, client.get_id())):
            muxed = _muxed(host, peer)
            lean_yamux.verify_connection(muxed)
            buffered_transport.verify_connection(muxed.secured_conn)
            # The same facts, spelled out: connection, stream and TCP locks, and the buffer.
            assert type(muxed) is LeanYamux
            assert type(muxed._write_lock) is NoYieldLock
            assert type(muxed.streams_lock) is NoYieldLock
            tcp = muxed.secured_conn.conn.read_writer.read_write_closer.stream
            assert type(tcp) is BufferedReads
            assert type(tcp.read_lock) is NoYieldLock
            assert type(tcp.write_lock) is NoYieldLock
        muxed_stream = stream.muxed_stream
        assert type(muxed_stream) is LeanYamuxStream
        assert type(muxed_stream.window_lock) is NoYieldLock
        assert type(muxed_stream.close_lock) is NoYieldLock
        assert type(muxed_stream.rw_lock._writer_lock) is NoYieldSemaphore
        assert type(stream._state_lock) is NoYieldLock
        await stream.reset()


async def test_lean_yamux__stock_peer_connection_is_not_reported_lean():
    server = make_host(identity_from_seed(), router_limits())
    client = make_host(identity_from_seed(), node_limits())
    # A peer whose muxer is py-libp2p's own (as a host built elsewhere would be).
    client.get_network().upgrader.muxer_multistream = lean_yamux.MuxerMultistream(
        {TProtocol(lean_yamux.YAMUX_PROTOCOL_ID): Yamux}, 10
    )
    with pytest.raises(PatchError):
        lean_yamux.verify(client)
    async with _connected(server, client):
        stream = await _round_trip(client, server, b"stock")
        assert type(stream.muxed_stream) is YamuxStream
        assert type(stream._state_lock) is trio.Lock  # lean_net_stream leaves it alone
        with pytest.raises(PatchError, match="muxer"):
            lean_yamux.verify_connection(_muxed(client, server.get_id()))
        lean_yamux.verify_connection(_muxed(server, client.get_id()))
        await stream.reset()


async def test_no_identify__patched_hosts_send_none_but_answer_a_stock_peer():
    server = make_host(identity_from_seed(), router_limits())
    client = make_host(identity_from_seed(), node_limits())
    stock = make_host(identity_from_seed(), node_limits())
    vars(stock).pop("_should_identify_peer", None)  # py-libp2p's own: identify every peer
    with pytest.raises(PatchError):
        no_identify.verify(stock)
    asked: dict[str, list[str]] = {"server": [], "client": [], "stock": []}
    for name, host in (("server", server), ("client", client), ("stock", stock)):
        answer = host.get_mux().handlers[IDENTIFY]

        async def counting(stream, name=name, answer=answer) -> None:  # type: ignore[no-untyped-def]
            asked[name].append(str(stream.muxed_conn.peer_id))
            await answer(stream)

        host.set_stream_handler(IDENTIFY, counting)
    async with _connected(server, client), stock.run([]):
        await (await _round_trip(client, server, b"identify?")).reset()
        # The stock peer's identify reaches the server and is answered...
        await stock.connect(info_from_p2p_addr(listen_addrs_of(server)[0]))
        await wait_until(lambda: str(stock.get_id()) in asked["server"], "the stock identify")
        await wait_until(lambda: stock.peerstore.get_protocols(server.get_id()), "its answer")
        # ...while neither patched host asked the other, or the stock peer, anything.
        await (await _round_trip(client, server, b"still nothing")).reset()
        assert asked["server"] == [str(stock.get_id())]
        assert asked["client"] == []
        assert asked["stock"] == []
        assert not server._should_identify_peer(client.get_id())
        assert not client._should_identify_peer(server.get_id())


async def test_forget_failed_dials__evicts_the_negative_cache_for_that_peer():
    server_key = identity_from_seed()
    client = make_host(identity_from_seed(), node_limits())
    # A port nobody listens on, then the server listening there.
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_host(server_key, router_limits())
    info = PeerInfo(server.get_id(), [loopback_listen_addr(port)])
    async with client.run([]):
        with pytest.raises(SwarmException):
            await client.connect(info)  # nothing listens: every address failed
        async with server.run([loopback_listen_addr(port)]):
            with pytest.raises(SwarmException, match="negative cache"):
                await client.connect(info)  # the library would wait out its 60 s
            forget_failed_dials(client, server.get_id())
            await client.connect(info)
            assert client.get_network().get_connections(server.get_id())


async def test_task_index__answers_the_swarm_lookups_on_a_live_connection():
    server = make_host(identity_from_seed(), router_limits())
    client = make_host(identity_from_seed(), node_limits())
    task_index.verify()
    before = task_index.running_tasks()
    async with _connected(server, client):
        await (await _round_trip(client, server, b"indexed")).reset()
        manager = server.get_network().manager
        # The swarm's service tasks are indexed, and the index gives the walk's answers.
        mine = [t for t in list(task_index._running) if manager._find_parent_task(t) is not None]
        assert len(mine) >= 2
        for trio_task in mine:
            assert manager._find_parent_task(trio_task) is task_index._running[trio_task]
            assert manager._find_parent_task(trio_task) is task_index.library_find_parent_task(
                manager, trio_task
            )
        assert task_index.running_tasks() > before


def test_guard__a_different_library_version_is_refused(monkeypatch):
    monkeypatch.setattr(guard, "PINNED_VERSION", "0.0.0")
    with pytest.raises(PatchError, match="written for 0.0.0"):
        make_host(identity_from_seed(), node_limits())


def test_guard__a_method_of_another_shape_is_refused():
    class Library:
        def _write_frame(self, data, flush):  # type: ignore[no-untyped-def]
            pass

        attribute = 1

    with pytest.raises(PatchError, match="takes"):
        guard.require_method(Library, "_write_frame", ("self", "data"))
    with pytest.raises(PatchError, match="not a function"):
        guard.require_method(Library, "attribute", ())
    with pytest.raises(PatchError, match="not a function"):
        guard.require_method(Library, "gone", ())
    with pytest.raises(PatchError, match="expected"):
        guard.require_type(trio.Semaphore(1), trio.Lock, "a lock")


def test_switch__patches_left_out_by_name_and_unknown_names_refused(monkeypatch):
    monkeypatch.setenv(guard.OFF_ENV, "lean_yamux,no_identify")
    host = make_host(identity_from_seed(), node_limits())
    assert (
        type(host.get_network().upgrader.muxer_multistream) is not lean_yamux.LeanMuxerMultistream
    )
    assert "_should_identify_peer" not in vars(host)
    libp2p_patches.verify_host(host)  # what is on is in effect
    monkeypatch.setenv(guard.OFF_ENV, "lean_yamux,no_such_patch")
    with pytest.raises(PatchError, match="no_such_patch"):
        make_host(identity_from_seed(), node_limits())
