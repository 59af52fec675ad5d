"""A caller's side of the invoke protocol: send one request to a router, get its answer."""

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from offchain.net.framing import FrameReader, receive
from offchain.net.host import identity_from_seed, make_host
from offchain.net.limits import node_limits
from offchain.net.session import SessionPool
from offchain.net.streams import close_quietly, send
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.wire import Request, Response


def new_request_id() -> bytes:
    """Return a fresh random 16-byte request id."""
    return os.urandom(16)


async def invoke(
    host: IHost,
    router: ID,
    workload: str,
    payload: bytes,
    timeout_s: float = 30.0,
    request_id: bytes | None = None,
) -> Response:
    """Send one request for ``workload`` to ``router`` over ``host`` and return the answer.

    Raises ``trio.TooSlowError`` after ``timeout_s``, ``FrameError`` on a bad answer, and the
    network's own errors when the router cannot be reached.
    """
    request = Request(request_id or new_request_id(), workload, payload, (), int(timeout_s * 1_000))
    with trio.fail_after(timeout_s + 1):
        stream = await host.new_stream(router, [protocols.INVOKE])
        try:
            await send(stream, request)
            response = await receive(FrameReader(stream), Response)
        finally:
            await close_quietly(stream)
    assert isinstance(response, Response)
    if response.request_id != request.request_id:
        raise ValueError("router answered another request")
    return response


@asynccontextmanager
async def caller(router_addrs: Sequence[str], timeout_s: float = 10.0) -> AsyncIterator[IHost]:
    """Run a fresh, non-listening host connected to each router in ``router_addrs``."""
    host = make_host(identity_from_seed(), node_limits())
    async with host.run([]):
        with trio.fail_after(timeout_s):
            for addr in router_addrs:
                await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(addr)))
        yield host


class RouterClient:
    """A caller that keeps one pipelined session per router; use it as an async context."""

    def __init__(self, host: IHost) -> None:
        self.host = host
        self.pool = SessionPool(host, protocols.INVOKE)

    async def __aenter__(self) -> "RouterClient":
        await self.pool.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        return await self.pool.__aexit__(*exc_info)

    async def call(
        self, router: ID, workload: str, payload: bytes, timeout_s: float = 30.0
    ) -> Response:
        """Return the router's answer to one request; raise ``trio.TooSlowError`` on timeout."""
        request = Request(new_request_id(), workload, payload, (), int(timeout_s * 1_000))
        with trio.fail_after(timeout_s + 1):
            return await self.pool.request(router, request)
