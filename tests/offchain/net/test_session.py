"""Pipelined sessions between two real libp2p hosts on loopback (Noise, Yamux)."""

from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr

from offchain.net.host import identity_from_seed, listen_addrs_of, loopback_listen_addr, make_host
from offchain.net.limits import node_limits, router_limits
from offchain.net.session import (
    ServeLimits,
    SessionEnded,
    SessionPool,
    SessionRefused,
    serve_session,
)
from offchain.protocol.frames import FRAME_VERSION, HEADER, MsgType
from offchain.protocol.wire import Request, Response
from tests.waiting import wait_until

PROTO = TProtocol("/test/session/1.0.0")


def _request(i: int, payload: bytes = b"", timeout_ms: int = 10_000) -> Request:
    return Request(i.to_bytes(16, "big"), "w", payload or b"%d" % i, (), timeout_ms)


def _busy(request: Request) -> Response:
    return Response(request.request_id, False, error="busy", message="full")


@asynccontextmanager
async def _pair(handle, limits: ServeLimits | None = None, outcomes: list | None = None):
    """Yield (pool, server peer id) with ``handle`` serving each session on the server."""
    server = make_host(identity_from_seed(), router_limits())
    client = make_host(identity_from_seed(), node_limits())

    async def serve(stream) -> None:
        try:
            handled = await serve_session(stream, handle, limits or ServeLimits(), _busy)
            if outcomes is not None:
                outcomes.append(("done", handled))
        except SessionRefused as exc:
            if outcomes is not None:
                outcomes.append(("refused", exc.reason))
            await stream.reset()

    server.set_stream_handler(PROTO, serve)
    async with server.run([loopback_listen_addr()]), client.run([]):
        await client.connect(info_from_p2p_addr(listen_addrs_of(server)[0]))
        async with SessionPool(client, PROTO) as pool:
            yield pool, server.get_id()


async def test_session__concurrent_requests__answered_out_of_order_on_one_stream():
    answered = [trio.Event() for _ in range(21)]
    answered[20].set()

    async def handle(request: Request) -> Response:
        index = int.from_bytes(request.request_id, "big")
        await answered[index + 1].wait()  # the last sent is answered first
        answered[index].set()
        return Response(request.request_id, True, output=request.payload * 2)

    async with _pair(handle) as (pool, server):
        answers: dict[int, bytes] = {}

        async def one(i: int) -> None:
            answers[i] = (await pool.request(server, _request(i))).output

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(one, i)
        assert answers == {i: b"%d%d" % (i, i) for i in range(20)}
        assert pool.opened == 1


async def test_session__caller_gives_up__late_answer_dropped_and_session_still_serves():
    release, late_answered = trio.Event(), trio.Event()

    async def handle(request: Request) -> Response:
        if request.payload == b"slow":
            await release.wait()
            late_answered.set()
        else:
            await late_answered.wait()  # so the late answer comes first on the stream
        return Response(request.request_id, True, output=request.payload)

    async with _pair(handle) as (pool, server):
        with trio.move_on_after(0.1) as gave_up:
            await pool.request(server, _request(1, b"slow"))
        assert gave_up.cancelled_caught
        release.set()  # the late answer arrives and is dropped
        with trio.fail_after(10):
            reply = await pool.request(server, _request(2, b"fast"))
        assert reply.output == b"fast"
        assert pool.opened == 1


async def test_session__more_than_max_in_flight__extra_requests_answered_busy_at_once():
    release = trio.Event()

    async def handle(request: Request) -> Response:
        await release.wait()
        return Response(request.request_id, True, output=b"done")

    async with _pair(handle, ServeLimits(max_in_flight=3)) as (pool, server):
        replies: list[Response] = []

        async def one(i: int) -> None:
            replies.append(await pool.request(server, _request(i)))

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(one, i)
                await wait_until(lambda: len(replies) >= 2, "two busy answers")
                assert [r.error for r in replies] == ["busy", "busy"]
                release.set()
        assert sorted(r.error for r in replies) == ["", "", "", "busy", "busy"]


async def test_session__server_handler_dies__waiting_requests_fail_and_next_opens_new_session():
    hanging = trio.Event()

    async def handle(request: Request) -> Response:
        if request.payload == b"hang":
            hanging.set()
            await trio.sleep_forever()
        return Response(request.request_id, True, output=request.payload)

    async with _pair(handle) as (pool, server):
        server_info = pool.host.get_peerstore().peer_info(server)
        with trio.fail_after(20):
            assert (await pool.request(server, _request(1, b"ok"))).ok

            async def kill_soon() -> None:
                await hanging.wait()
                await pool.host.get_network().close_peer(server)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(kill_soon)
                with pytest.raises(SessionEnded):
                    await pool.request(server, _request(2, b"hang"))
            await pool.host.connect(server_info)
            reply = await pool.request(server, _request(3, b"again"))
        assert reply.output == b"again"
        assert pool.opened == 2


async def test_session__malformed_frame__server_refuses_with_reason_and_caller_sees_end():
    outcomes: list = []
    received = trio.Event()

    async def handle(request: Request) -> Response:
        received.set()
        await trio.sleep_forever()

    async with _pair(handle, outcomes=outcomes) as (pool, server):
        with trio.fail_after(20):
            waiting = trio.Event()

            async def wait_for_answer() -> None:
                with pytest.raises(SessionEnded):
                    await pool.request(server, _request(1))
                waiting.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait_for_answer)
                await received.wait()  # the session is open and its request in flight
                # A frame of an unknown version on the same stream.
                await pool._sessions[server].stream.write(HEADER.pack(FRAME_VERSION + 1, 5, 0))
            await waiting.wait()
            await wait_until(lambda: bool(outcomes), "the server's outcome")
        assert outcomes == [("refused", "unknown-version")]


async def test_session__silent_peer_and_idle_session__timed_out_but_long_work_is_not():
    outcomes: list = []

    async def handle(request: Request) -> Response:
        # Work that lasts twice the idle timeout below: the duration is what this test is about.
        await trio.sleep(0.6)
        return Response(request.request_id, True, output=b"late but whole")

    limits = ServeLimits(first_timeout_s=0.3, idle_timeout_s=0.3)
    async with _pair(handle, limits, outcomes) as (pool, server):
        with trio.fail_after(20):
            reply = await pool.request(server, _request(1))
            assert reply.output == b"late but whole"
            # Nothing in flight now: the server ends the idle session.
            await wait_until(lambda: bool(outcomes), "the idle session to end")
            assert outcomes == [("done", 1)]
            # A stream that never sends a request is refused after first_timeout_s.
            stream = await pool.host.new_stream(server, [PROTO])
            await wait_until(lambda: len(outcomes) >= 2, "the silent stream to be refused")
            await stream.reset()
            assert outcomes[1] == ("refused", "timeout")
            # The pool notices its session has ended and opens a fresh one.
            assert (await pool.request(server, _request(2))).ok


async def test_session__unexpected_message_type__refused():
    outcomes: list = []

    async def handle(request: Request) -> Response:
        return Response(request.request_id, True)

    async with _pair(handle, outcomes=outcomes) as (pool, server):
        with trio.fail_after(20):
            stream = await pool.host.new_stream(server, [PROTO])
            await stream.write(HEADER.pack(FRAME_VERSION, int(MsgType.RESPONSE), 0))
            await wait_until(lambda: bool(outcomes), "the server's outcome")
            await stream.reset()
        assert outcomes == [("refused", "unexpected-type")]


async def test_session__answer_too_large_or_handler_bug__that_request_fails_others_answered():
    async def handle(request: Request) -> Response:
        if request.payload == b"huge":
            return Response(request.request_id, True, output=b"x" * (5 * 1024 * 1024))
        if request.payload == b"bug":
            raise RuntimeError("handler bug")
        await others_answered.wait()
        return Response(request.request_id, True, output=request.payload)

    others_answered = trio.Event()
    async with _pair(handle) as (pool, server):
        replies: dict[bytes, Response] = {}

        async def one(i: int, payload: bytes) -> None:
            replies[payload] = await pool.request(server, _request(i, payload))
            if b"huge" in replies and b"bug" in replies:
                others_answered.set()

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for i, payload in enumerate((b"slow", b"huge", b"bug")):
                    nursery.start_soon(one, i, payload)
        assert replies[b"huge"].error == "output-too-large"
        assert replies[b"bug"].error == "internal-error"
        assert replies[b"slow"].ok and replies[b"slow"].output == b"slow"
        assert pool.opened == 1


class _StalledStream:
    """A stream whose writes wait until ``release`` is set: a peer that stopped reading."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.written = 0

    async def write(self, data: bytes) -> None:
        await self.release.wait()
        self.written += len(data)


async def test_outbox__peer_stops_reading__senders_wait_and_the_queue_stays_bounded():
    from offchain.net.session import MAX_QUEUED_BYTES, _Outbox

    stream = _StalledStream()
    outbox = _Outbox(stream, lambda exc: None, lambda: False)  # type: ignore[arg-type]
    frame = b"f" * 1_024
    sent = 0

    async def flood() -> None:
        nonlocal sent
        for _ in range(4 * MAX_QUEUED_BYTES // len(frame)):
            await outbox.send(frame)
            sent += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        await trio.testing.wait_all_tasks_blocked()
        # The first send writes (and stalls); the rest queue until the bound, then wait.
        assert outbox._queued_bytes <= MAX_QUEUED_BYTES + len(frame)
        assert sent < 4 * MAX_QUEUED_BYTES // len(frame)
        stream.release.set()
    assert stream.written == 4 * MAX_QUEUED_BYTES
    assert outbox._queued_bytes == 0
