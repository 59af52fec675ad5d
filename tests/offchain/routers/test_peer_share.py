"""One caller's share of a router's in-flight work: a flood from one peer leaves room for others."""

import trio
from libp2p.peer.id import ID

from offchain.routers.agent import RouterAgent
from offchain.routers.config import RouterConfig
from offchain.routers.router_client import RouterClient, caller
from offchain.workers.node import NodeAgent, NodeConfig
from tests.offchain.routers.routernet import wait_until


async def test_peer_share__one_caller_at_its_share__busy_while_another_is_served():
    stop = trio.Event()
    # max_in_flight 8: each caller may hold 2 requests in flight at the router.
    router = RouterAgent(RouterConfig(max_in_flight=8))
    router.node_links.is_staked = lambda address: True
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run, stop)
        await router.ready.wait()
        addr = router.addrs()[0]
        node = NodeAgent(NodeConfig(routers=[addr], workloads=["sleep", "echo"], parallel=8))
        nursery.start_soon(node.run, stop)
        await wait_until(lambda: len(router.table.nodes) == 1, 30, "the node to link")
        target = ID.from_base58(router.me)
        async with (
            caller([addr]) as host_a,
            RouterClient(host_a) as flooder,
            caller([addr]) as host_b,
            RouterClient(host_b) as other,
        ):
            replies = []

            async def slow() -> None:
                replies.append(await flooder.call(target, "sleep", b"3000", 20))

            async with trio.open_nursery() as calls:
                calls.start_soon(slow)
                calls.start_soon(slow)
                await wait_until(lambda: router.in_flight == 2, 10, "two requests in flight")
                third = await flooder.call(target, "sleep", b"1", 10)
                assert not third.ok and third.error == "busy"
                served = await other.call(target, "echo", b"mine", 10)
                assert served.ok and served.output == b"mine"
            assert [r.ok for r in replies] == [True, True]
        stop.set()
