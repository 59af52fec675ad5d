"""The source gate: an address that keeps sending peers we cut off is refused at accept.

Connections made before the address was refused keep being served, so honest peers sharing it
(here everyone shares 127.0.0.1) lose nothing they had.
"""

import multiaddr
import pytest
import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from offchain.net.host import identity_from_seed, make_host
from offchain.net.limits import node_limits
from offchain.net.source_gate import GatePolicy, SourceGate
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.frames import FRAME_VERSION, HEADER, MsgType
from offchain.routers.agent import RouterAgent
from offchain.routers.config import RouterConfig
from offchain.routers.router_client import RouterClient, caller
from offchain.workers.node import NodeAgent, NodeConfig
from tests.offchain.routers.routernet import wait_until

BOMB = bytes.fromhex("d81ca16161d81d00")
BAD_FRAME = HEADER.pack(FRAME_VERSION, int(MsgType.REQUEST), len(BOMB)) + BOMB


def test_gate__cut_offs_within_window__refused_for_cool_down() -> None:
    now = [0.0]
    gate = SourceGate(GatePolicy(cut_offs=2, window_s=10, cool_down_s=30), clock=lambda: now[0])
    assert not gate.note_cut_off("10.0.0.1")
    assert gate.allows("10.0.0.1")
    now[0] = 5.0
    assert gate.note_cut_off("10.0.0.1")
    assert not gate.allows("10.0.0.1")
    assert gate.allows("10.0.0.2")
    now[0] = 36.0
    assert gate.allows("10.0.0.1")
    assert gate.refused == 1


async def _cut_off_once(router: RouterAgent, addr: str) -> None:
    """Connect as a fresh identity and send bad frames until the router cuts us off."""
    host = make_host(identity_from_seed(), node_limits())
    info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    me = None
    async with host.run([]):
        await host.connect(info)
        me = host.get_id().to_string()
        while router.guard.banned_for(me) == 0:
            try:
                with trio.fail_after(5):
                    stream = await host.new_stream(info.peer_id, [protocols.INVOKE])
                    await stream.write(BAD_FRAME)
                    await stream.read(100)
            except Exception:  # noqa: BLE001 - refused: a reset, in any of its forms
                pass


@pytest.mark.timeout(120)
async def test_source_gate__cut_off_peers_from_one_address__new_connections_refused_old_served():
    stop = trio.Event()
    router = RouterAgent(RouterConfig(strikes=2, source_cut_offs=2))
    router.node_links.is_staked = lambda address: True
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run, stop)
        await router.ready.wait()
        addr = router.addrs()[0]
        node = NodeAgent(NodeConfig(routers=[addr]))
        nursery.start_soon(node.run, stop)
        await wait_until(lambda: len(router.table.nodes) == 1, 30, "the node to link")
        async with caller([addr]) as host, RouterClient(host) as client:
            target = ID.from_base58(router.me)
            assert (await client.call(target, "echo", b"before", 10)).ok
            # Two identities from 127.0.0.1 cut off: the address is refused from now on.
            for _ in range(2):
                with trio.fail_after(30):
                    await _cut_off_once(router, addr)
            assert router.gate is not None
            await wait_until(lambda: router.gate.refuses("127.0.0.1"), 10, "the gate")
            # A new connection from the address fails before any handshake...
            late = make_host(identity_from_seed(), node_limits())
            async with late.run([]):
                with pytest.raises(Exception):  # noqa: B017 - refused at accept: any error
                    with trio.fail_after(15):
                        await late.connect(info_from_p2p_addr(multiaddr.Multiaddr(addr)))
                        await late.new_stream(target, [protocols.INVOKE])
            refused = router.metrics.rejected.labels(reason="source-refused")._value.get()
            assert refused >= 1
            # ... while the caller and the node, connected before, are still served.
            reply = await client.call(target, "echo", b"after", 10)
            assert reply.ok and reply.output == b"after"
        stop.set()
