import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr

from bench.stream_pool import RequestIterator, StreamPool
from offchain.net.host import identity_from_seed, listen_addrs_of, loopback_listen_addr, make_host
from offchain.net.limits import node_limits, router_limits
from offchain.net.streams import close_quietly, send
from offchain.protocol.wire import Request, Response
from tests.waiting import wait_until

PROTO = TProtocol("/test/pool/1.0.0")


async def test_pool__sequential_requests__reuse_one_stream_and_survive_server_close():
    server = make_host(identity_from_seed(), router_limits())
    client = make_host(identity_from_seed(), node_limits())
    served_streams = []
    closed = []

    async def handle(stream) -> None:
        served_streams.append(stream)
        try:
            async for request in RequestIterator(stream, 5.0, 5.0, idle_timeout_s=0.3):
                await send(stream, Response(request.request_id, True, output=request.payload))
        finally:
            await close_quietly(stream)
            closed.append(stream)

    server.set_stream_handler(PROTO, handle)
    async with server.run([loopback_listen_addr()]), client.run([]):
        await client.connect(info_from_p2p_addr(listen_addrs_of(server)[0]))
        pool = StreamPool(client, PROTO)
        with trio.fail_after(20):
            for i in range(5):
                reply = await pool.request(
                    server.get_id(), Request(bytes([i]) * 16, "w", b"%d" % i)
                )
                assert reply.output == b"%d" % i
            assert pool.opened == 1
            # The server gives up on the idle stream; the pool notices and opens a fresh one.
            await wait_until(lambda: len(closed) >= 1, "the server to close the idle stream")
            reply = await pool.request(server.get_id(), Request(b"z" * 16, "w", b"again"))
            assert reply.output == b"again"
            assert pool.opened == 2

            async def concurrent(i: int) -> None:
                reply = await pool.request(server.get_id(), Request(bytes([i]) * 16, "w", b"c"))
                assert reply.ok

            async with trio.open_nursery() as nursery:
                for i in range(4):
                    nursery.start_soon(concurrent, i)
            assert 2 < pool.opened <= 6  # one stream per concurrent request at most
