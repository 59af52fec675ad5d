"""A caller's side of the invoke protocol: sign an order, send it to a router, check the receipt.

``order_for`` builds an ``InvocationRequest`` for an input, ``sign_order`` signs it with a raw
key or an eth-account ``LocalAccount`` (what web3 and Ape users hold), ``signed_request`` puts
order and input in a ``Request``, and ``verify_receipt`` checks the answer: the receipt is this
order's, its worker signed it, the output hashes to it, and its price is within ``max_price``.
``InvocationClient`` does all four over a pipelined session per router.
"""

import os
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from offchain.crypto.keys import keypair_from_private_key
from offchain.net.framing import FrameReader, receive
from offchain.net.host import identity_from_seed, make_host
from offchain.net.limits import node_limits
from offchain.net.session import SessionPool
from offchain.net.streams import close_quietly, send
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.invocation import (
    InvocationDomain,
    InvocationRequest,
    Receipt,
    content_hash,
    decode_receipt,
    encode_request,
    recover_receipt_signer,
    request_digest,
    request_typed_data,
    sign_request,
)
from offchain.protocol.invocation.invocation_errors import (
    BadNodeSignature,
    OutputMismatch,
    PriceAboveMax,
    ReceiptMismatch,
)
from offchain.protocol.wire import Request, Response

# How long an order stays valid by default: long enough for a slow route, short enough that
# a router remembers its nonce only briefly.
DEFAULT_DEADLINE_S = 300


class TypedDataSigner(Protocol):
    """What an eth-account ``LocalAccount`` offers: an address and ``sign_typed_data``."""

    address: str

    def sign_typed_data(self, *, full_message: dict) -> object:
        """Return a signed message whose ``signature`` is the 65 bytes."""


Signer = bytes | TypedDataSigner


class InvocationFailed(RuntimeError):
    """The router refused or failed the order; ``code`` is the reason it gave."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class Invoked:
    """A served invocation: the output and the node's checked receipt."""

    output: bytes
    receipt: Receipt
    node_signature: bytes


def new_nonce() -> int:
    """Return a random 128-bit nonce: unique per signer without keeping a counter."""
    return secrets.randbits(128)


def order_for(
    user: str,
    socket_id: int,
    workload: str,
    payload: bytes,
    max_price: int,
    *,
    nonce: int | None = None,
    deadline: int | None = None,
) -> InvocationRequest:
    """Return the order to run ``workload`` on ``payload`` through socket ``socket_id``."""
    return InvocationRequest(
        user=user,
        socket_id=socket_id,
        workload=workload,
        input_hash=content_hash(payload),
        max_price=max_price,
        nonce=new_nonce() if nonce is None else nonce,
        deadline=int(time.time()) + DEFAULT_DEADLINE_S if deadline is None else deadline,
    )


def sign_order(signer: Signer, order: InvocationRequest, domain: InvocationDomain) -> bytes:
    """Return ``signer``'s 65-byte EIP-712 signature of ``order`` (a raw key or an account)."""
    if isinstance(signer, bytes):
        return sign_request(signer, order, domain)
    signed = signer.sign_typed_data(full_message=request_typed_data(order, domain))
    return bytes(signed.signature)  # type: ignore[attr-defined]


def signed_request(
    order: InvocationRequest, signature: bytes, payload: bytes, timeout_s: float = 30.0
) -> Request:
    """Return the request that carries ``order``, its signature and its input."""
    return Request(
        new_request_id(),
        order.workload,
        payload,
        (),
        int(timeout_s * 1_000),
        invocation=encode_request(order),
        signature=signature,
    )


def verify_receipt(
    response: Response, order: InvocationRequest, domain: InvocationDomain
) -> Invoked:
    """Return the checked output and receipt of ``response``, or raise why not.

    Raises ``InvocationFailed`` with the router's code when it refused, else the
    ``InputRejected`` that names what is wrong with the receipt (an ``InvocationRejected``, or
    the decoder's ``CborError``).
    """
    if not response.ok:
        raise InvocationFailed(response.error, response.message)
    if not response.receipt or not response.node_signature:
        raise BadNodeSignature("the answer carries no signed receipt")
    receipt = decode_receipt(response.receipt)
    if receipt.request_hash != request_digest(order, domain):
        raise ReceiptMismatch("the receipt is for another order")
    signer = recover_receipt_signer(receipt, response.node_signature, domain)
    if signer != receipt.worker:
        raise BadNodeSignature(f"receipt signed by {signer}, not its worker {receipt.worker}")
    if content_hash(response.output) != receipt.output_hash:
        raise OutputMismatch("the output does not hash to the receipt's output_hash")
    if receipt.price > order.max_price:
        raise PriceAboveMax(f"price {receipt.price} above max_price {order.max_price}")
    return Invoked(response.output, receipt, response.node_signature)


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


class InvocationClient:
    """A signer that sends orders to routers and checks their receipts; an async context."""

    def __init__(self, host: IHost, signer: Signer, domain: InvocationDomain) -> None:
        self.client = RouterClient(host)
        self.signer = signer
        self.domain = domain
        self.user = (
            keypair_from_private_key(signer).address
            if isinstance(signer, bytes)
            else signer.address
        )

    async def __aenter__(self) -> "InvocationClient":
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        return await self.client.__aexit__(*exc_info)

    async def send(
        self, router: ID, order: InvocationRequest, payload: bytes, timeout_s: float = 30.0
    ) -> Response:
        """Return the router's unchecked answer to ``order`` on ``payload``, signed here."""
        request = signed_request(
            order, sign_order(self.signer, order, self.domain), payload, timeout_s
        )
        with trio.fail_after(timeout_s + 1):
            return await self.client.pool.request(router, request)

    async def invoke(
        self,
        router: ID,
        socket_id: int,
        workload: str,
        payload: bytes,
        max_price: int,
        timeout_s: float = 30.0,
    ) -> Invoked:
        """Run ``workload`` on ``payload`` through socket ``socket_id``; return it, checked."""
        order = order_for(self.user, socket_id, workload, payload, max_price)
        response = await self.send(router, order, payload, timeout_s)
        return verify_receipt(response, order, self.domain)
