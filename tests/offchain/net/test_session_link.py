"""A node's link shape: the serving end opens the stream, and other messages share it.

The node opens the stream and serves requests on it (``SessionServer`` with pings); the router
adopts the stream it accepted as its client session (``ClientSession`` with load reports and
pongs) in a ``SessionPool`` that opens nothing itself. Real hosts on loopback.
"""

from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from offchain.net.framing import FrameReader
from offchain.net.host import identity_from_seed, listen_addrs_of, loopback_listen_addr, make_host
from offchain.net.limits import node_limits, router_limits
from offchain.net.session import (
    ClientSession,
    ServeLimits,
    SessionEnded,
    SessionPool,
    SessionRefused,
    SessionServer,
)
from offchain.protocol.wire import Load, Message, Ping, Pong, Request, Response
from tests.waiting import wait_until

LINK = TProtocol("/test/link/1.0.0")


def _request(i: int, payload: bytes = b"x") -> Request:
    return Request(i.to_bytes(16, "big"), "w", payload, (), 10_000)


def _busy(request: Request) -> Response:
    return Response(request.request_id, False, error="busy")


async def _echo(request: Request) -> Response:
    await trio.lowlevel.checkpoint()  # answered from another task, as a real handler is
    return Response(request.request_id, True, output=request.payload)


async def _serve_link(server: SessionServer, refused: list[str]) -> None:
    """Serve as a node does: a refused link is reset (the router then sees it end)."""
    try:
        await server.run()
    except SessionRefused as exc:
        refused.append(exc.reason)
        await server.stream.reset()


@dataclass
class _Link:
    pool: SessionPool  # the router's pool of node sessions
    node: ID
    seen: list[Message] = field(default_factory=list)  # non-answers the router took
    sessions: list[ClientSession] = field(default_factory=list)  # adopted, in order
    ended: list[SessionEnded] = field(default_factory=list)
    servers: list[SessionServer] = field(default_factory=list)  # the node's ends
    refused: list[str] = field(default_factory=list)  # why the node's ends refused, if so
    open_another: Callable[[], Awaitable[None]] | None = None


@asynccontextmanager
async def _link(*, silence_s: float = 30.0, node_idle_s: float = 30.0, node_reports: bool = True):
    """Yield a ``_Link`` with one link open, node to router."""
    router = make_host(identity_from_seed(), router_limits())
    node = make_host(identity_from_seed(), node_limits())
    async with router.run([loopback_listen_addr()]), node.run([]):
        async with SessionPool(router, None) as pool, trio.open_nursery() as nursery:
            link = _Link(pool, node.get_id())

            async def accept(stream) -> None:
                session = ClientSession(
                    stream,
                    FrameReader(stream),
                    kinds=(Load, Pong),
                    on_message=link.seen.append,
                    silence_s=lambda: silence_s,
                )
                pool.adopt(stream.muxed_conn.peer_id, session)
                link.sessions.append(session)
                link.ended.append(await session.run())

            async def open_link() -> None:
                stream = await node.new_stream(router.get_id(), [LINK])
                server = SessionServer(
                    stream,
                    _echo,
                    ServeLimits(first_timeout_s=node_idle_s, idle_timeout_s=node_idle_s),
                    _busy,
                    kinds=(Ping,),
                    on_message=lambda ping: Pong(ping.nonce, 3),
                )
                link.servers.append(server)
                nursery.start_soon(_serve_link, server, link.refused)
                if node_reports:
                    await server.send(Load(7))
                count = len(link.servers)
                await wait_until(lambda: len(link.sessions) >= count, "len(link.sessions) >= count")

            router.set_stream_handler(LINK, accept)
            await node.connect(info_from_p2p_addr(listen_addrs_of(router)[0]))
            link.open_another = open_link
            with trio.fail_after(10):
                await open_link()
            yield link
            nursery.cancel_scope.cancel()


async def test_link__requests_pings_and_load__all_on_the_nodes_one_stream():
    async with _link() as link:
        with trio.fail_after(20):
            answers: dict[int, bytes] = {}

            async def one(i: int) -> None:
                answers[i] = (await link.pool.request(link.node, _request(i, b"%d" % i))).output

            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(one, i)
                await link.sessions[0].send(Ping(41))
            await wait_until(lambda: Pong(41, 3) in link.seen, "Pong(41, 3) in link.seen")
        assert answers == {i: b"%d" % i for i in range(10)}
        assert Load(7) in link.seen
        assert link.pool.opened == 0  # no stream was opened for the work


async def test_link__node_silent__router_session_ends_as_timeout_and_requests_fail_gone():
    async with _link(silence_s=0.3, node_reports=False) as link:
        with trio.fail_after(20):
            await wait_until(lambda: bool(link.ended), "bool(link.ended)")
            assert link.ended[0].reason == "timeout"
            assert link.sessions[0].closed
            link.pool.forget(link.node, link.sessions[0])
            with pytest.raises(SessionEnded) as gone:
                await link.pool.request(link.node, _request(1))
        assert gone.value.reason == "gone"  # a pool with no protocol dials nothing


async def test_link__router_silent__node_ends_the_link_before_and_after_its_first_ping():
    async with _link(node_idle_s=0.3) as link:
        with trio.fail_after(20):
            # nothing ever came: refused as a silent peer
            await wait_until(lambda: bool(link.ended), "bool(link.ended)")
        assert link.refused == ["timeout"]
        assert link.ended[0].reason == "gone"
        assert link.open_another is not None
        with trio.fail_after(20):
            await link.open_another()
            await link.sessions[1].send(Ping(1))
            # pinged once, then quiet: the node closes it
            await wait_until(lambda: len(link.ended) >= 2, "len(link.ended) >= 2")
        assert link.servers[1].went_quiet and link.refused == ["timeout"]
        assert Pong(1, 3) in link.seen


async def test_pool__node_links_again__forgetting_the_old_link_keeps_the_new_one():
    async with _link() as link:
        assert link.open_another is not None
        with trio.fail_after(20):
            await link.open_another()
            old, new = link.sessions
            link.pool.forget(link.node, old)  # the old link's end comes after the new one
            assert old.closed and not new.closed
            assert (await link.pool.request(link.node, _request(5))).ok
            link.pool.forget(link.node, new)
            with pytest.raises(SessionEnded):
                await link.pool.request(link.node, _request(6))
