"""The user's signed demo traffic: the orders, sending them through the routers, checking answers.

Each answer's receipt and output are checked as a requester does, the replay of the first order
must be refused, and the records gossiped meanwhile are collected (``demo_records.py``).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import trio
from eth_account.signers.local import LocalAccount
from libp2p.peer.id import ID

from offchain.crypto.keys import keypair_from_private_key
from offchain.devnet.demo_records import RecordsSeen
from offchain.devnet.devnet_agents import DevnetAgents
from offchain.devnet.devnet_chain import DemoMarket, DemoSocket
from offchain.devnet.devnet_params import (
    DEMO_BATCHES,
    DEMO_SIZE,
    DEMO_WORKLOAD,
    INVOCATIONS_PER_BATCH,
    LINK_TIMEOUT_S,
    RECORDS_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
)
from offchain.protocol.errors import InputRejected
from offchain.protocol.invocation import InvocationRecord, InvocationRequest, request_digest
from offchain.protocol.wire import Response
from offchain.routers.record_feed import RecordFeed, record_feed
from offchain.routers.router_client import (
    InvocationClient,
    InvocationFailed,
    caller,
    order_for,
    verify_receipt,
)
from offchain.workers.workloads import decode, encode, get_workload


@dataclass(frozen=True)
class Served:
    """One demo request as it happened: who routed it, who ran it, its checked receipt."""

    height: int
    index: int
    router: str  # the router the caller sent it to
    node: str  # the compute node actor's name
    node_peer_id: str  # Response.node: the libp2p peer id of the node that ran it
    node_address: str  # that node's staked address (from its ready file)
    socket_id: int
    request_hash: bytes  # the order's EIP-712 digest, which its receipt and record name
    units: int  # the receipt's units
    price: int  # the receipt's price
    output_hash: bytes  # the receipt's output hash (the caller hashed the output it got)
    hops: int


@dataclass(frozen=True)
class Refused:
    """A demo order a router refused: billed nothing, since it left no record."""

    router: str
    request_hash: bytes
    reason: str


def demo_inputs(seed: int) -> dict[str, np.ndarray]:
    """Return the inputs of one demo request: two random float32 matrices."""
    rng = np.random.default_rng(seed)
    shape = (DEMO_SIZE, DEMO_SIZE)
    return {
        "a": rng.standard_normal(shape, dtype=np.float32),
        "b": rng.standard_normal(shape, dtype=np.float32),
    }


@dataclass(frozen=True)
class Demand:
    """One demo request: the router it goes to, the socket, the user's order and the input."""

    index: int
    router: str
    socket: DemoSocket
    order: InvocationRequest
    inputs: dict[str, np.ndarray]
    payload: bytes


def demo_demands(agents: DevnetAgents, market: DemoMarket) -> list[Demand]:
    """Return the demo requests: they alternate between the routers and over the user's sockets."""
    routers = list(agents.routers)
    sockets = market.sockets_for(DEMO_WORKLOAD)
    demands = []
    for i in range(DEMO_BATCHES * INVOCATIONS_PER_BATCH):
        inputs = demo_inputs(i)
        payload = encode(inputs)
        socket = sockets[i % len(sockets)]
        order = order_for(
            market.user.address, socket.socket_id, DEMO_WORKLOAD, payload, socket.price
        )
        demands.append(Demand(i, routers[i % len(routers)], socket, order, inputs, payload))
    return demands


async def _collect(feed: RecordFeed, seen: RecordsSeen) -> None:
    async for record in feed.records():
        seen.add(record)


async def _exchange(
    agents: DevnetAgents, market: DemoMarket, demands: Sequence[Demand], validator: LocalAccount
) -> tuple[dict[int, Response], Response, RecordsSeen]:
    """Send the signed orders, and the replay of the first; return the answers and records.

    The records are collected as they are gossiped, by a feed joined (bound to ``validator``)
    before the first order goes out; this returns once every served order has its record.
    """
    addrs = list(agents.router_addrs.values())
    peers = {name: ID.from_base58(p.info["peer_id"]) for name, p in agents.routers.items()}
    seen = RecordsSeen({request_digest(d.order, market.domain) for d in demands})
    answers: dict[int, Response] = {}
    key = keypair_from_private_key(validator.key)
    failure: Exception | None = None
    async with (
        record_feed(key, addrs) as feed,
        caller(addrs) as host,
        InvocationClient(host, market.user, market.domain) as client,
    ):

        async def send(demand: Demand) -> Response:
            router = peers[demand.router]
            return await client.send(router, demand.order, demand.payload, REQUEST_TIMEOUT_S)

        async def one(demand: Demand) -> None:
            answers[demand.index] = await send(demand)

        async def all_of(batch: Sequence[Demand]) -> None:
            async with trio.open_nursery() as senders:
                for demand in batch:
                    senders.start_soon(one, demand)

        # A first order on each socket (so each node's first, slowest, run overlaps the others),
        # then the first order again, to the router that served it: a replay; then the rest.
        first_round = len(market.sockets_for(DEMO_WORKLOAD))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_collect, feed, seen)
            try:
                await feed.meshed(LINK_TIMEOUT_S)
                await all_of(demands[:first_round])
                replay = await send(demands[0])
                await all_of(demands[first_round:])
                seen.expect(
                    {request_digest(d.order, market.domain) for d in demands if answers[d.index].ok}
                )
                with trio.move_on_after(RECORDS_TIMEOUT_S):
                    await seen.done.wait()
            except Exception as exc:  # raised below, not wrapped in the nursery's group
                failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if not seen.done.is_set():
        missing = len(seen.served or ()) - len(seen.by_request)
        raise TimeoutError(
            f"{missing} served orders' records not gossiped within {RECORDS_TIMEOUT_S} s"
        )
    return answers, replay, seen


@dataclass(frozen=True)
class DemoTraffic:
    """What the demo traffic did: the served requests, the refused ones, the served records."""

    served: list[Served]
    refused: list[Refused]
    records: list[InvocationRecord]  # one per served request, in the order of ``served``


def send_demo_traffic(
    agents: DevnetAgents, market: DemoMarket, validator: LocalAccount
) -> DemoTraffic:
    """Send the user's signed orders through the routers, check every answer, collect records.

    Each answer's receipt is verified (this order's, signed by the socket's node, for the output
    returned, within the order's price) and its output checked with the workload's verifier, as
    a requester does. The first order's replay must be refused. Every served request must have
    exactly one record on the records topic, and a refused one none.
    """
    workload = get_workload(DEMO_WORKLOAD)
    demands = demo_demands(agents, market)
    answers, replay, seen = trio.run(_exchange, agents, market, demands, validator)
    node_by_peer = agents.node_by_peer()
    served = []
    for demand in demands:
        i, router, answer = demand.index, demand.router, answers[demand.index]
        try:
            invoked = verify_receipt(answer, demand.order, market.domain)
        except (InvocationFailed, InputRejected) as exc:
            raise RuntimeError(f"demo request {i} via {router} failed: {exc}") from exc
        node = node_by_peer.get(answer.node)
        if node is None:
            raise RuntimeError(f"demo request {i} answered by {answer.node!r}, not a devnet node")
        receipt = invoked.receipt
        if receipt.worker != demand.socket.node_address or node != demand.socket.node:
            raise RuntimeError(
                f"demo request {i} on {demand.socket.node}'s socket served by {node} "
                f"(receipt of {receipt.worker})"
            )
        outputs = decode(invoked.output)
        verdict = workload.verify(demand.inputs, outputs, np.random.default_rng(10_000 + i))
        if not verdict.accepted:
            raise RuntimeError(f"{node}'s answer to request {i} failed: {verdict.reason}")
        served.append(
            Served(
                height=1 + i // INVOCATIONS_PER_BATCH,
                index=i % INVOCATIONS_PER_BATCH,
                router=router,
                node=node,
                node_peer_id=answer.node,
                node_address=agents.nodes[node].info["address"],
                socket_id=demand.socket.socket_id,
                request_hash=receipt.request_hash,
                units=receipt.units,
                price=receipt.price,
                output_hash=receipt.output_hash,
                hops=answer.hops,
            )
        )
    if replay.ok or replay.error != "nonce-reused":
        raise RuntimeError(
            f"the replayed order was answered {'ok' if replay.ok else replay.error!r}, "
            "not refused as nonce-reused"
        )
    first = demands[0]
    refused = [Refused(first.router, request_digest(first.order, market.domain), replay.error)]
    if seen.faults:
        raise RuntimeError("; ".join(seen.faults))
    records = [seen.by_request[s.request_hash] for s in served]
    return DemoTraffic(served, refused, records)
