"""Mesh membership on loopback: only staked routers become neighbours, and a neighbour that
keeps relaying forgeries is cut off until its cool-down ends.

Routers run in-process (real libp2p hosts on 127.0.0.1) so the test can set their conduct
policy (``RouterAgent.conduct``) to a short window and cool-down. M is a host with a staked
router's keys that speaks the mesh protocol frame by frame; C's keys sign genuine summaries
that M relays, replays and forges (C itself never runs).
"""

import logging
from dataclasses import replace

import trio
from libp2p.peer.id import ID

from offchain.net.streams import NET_ERRORS
from offchain.protocol.wire import SignedSummary, encode
from offchain.routers import mesh as meshlib
from offchain.routers.agent import RouterAgent
from offchain.routers.config import RouterConfig
from offchain.routers.mesh import MESH_CONDUCT, Conduct
from offchain.routers.router_client import caller, invoke
from offchain.routers.signing import open_summary, summary_body
from offchain.runtime.spawn import seed_hex
from offchain.workers.node import NodeAgent, NodeConfig
from tests.offchain.routers.routernet import (
    MeshKeys,
    agent_errors,
    eth_address,
    mesh_links,
    mesh_peer,
)
from tests.waiting import wait_until

C = MeshKeys(b"stake-c")
M = MeshKeys(b"stake-m")
# Another libp2p identity bound to M's address: a cut-off router coming back under a new id.
M2 = MeshKeys(b"stake-m2", eth_label=b"stake-m")


def config(label: str, staked_routers: list[str], **kwargs) -> RouterConfig:
    return RouterConfig(
        summary_interval_s=0.2,
        eth_key_seed=seed_hex(label),
        staked_routers=staked_routers,
        **kwargs,
    )


def logged(caplog, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


async def until(check, what: str, timeout_s: float = 10.0) -> None:
    await wait_until(check, what, timeout_s)


async def reset_by_router(stream) -> bool:
    """Return whether the router ended ``stream`` (read until EOF or a reset)."""
    if stream is None:
        return True  # ended before it was even set up
    with trio.fail_after(5):
        try:
            while await stream.read(65_536):
                pass
        except NET_ERRORS:
            pass
    return True


async def test_unstaked_router__not_a_neighbour_nor_next_hop__relayed_summaries_refused(caplog):
    caplog.set_level(logging.INFO)
    staked = [eth_address("stake-a"), eth_address("stake-b")]
    stop = trio.Event()
    a = RouterAgent(config("stake-a", staked))
    # Two refusals of a kind that were evidence would cut B off; these must not count.
    a.conduct = Conduct(replace(MESH_CONDUCT, strikes=2))
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.run, stop)
            await a.ready.wait()
            # B's view of stake includes U; A's does not (views may disagree).
            wider = [*staked, eth_address("stake-u")]
            b = RouterAgent(config("stake-b", wider, peers=[a.addrs()[0]]))
            nursery.start_soon(b.run, stop)
            await b.ready.wait()
            u = RouterAgent(
                config(
                    "stake-u",
                    wider,
                    peers=[a.addrs()[0], b.addrs()[0]],
                    staked=[eth_address("stake-node")],
                )
            )
            nursery.start_soon(u.run, stop)
            await u.ready.wait()
            node = NodeAgent(
                NodeConfig(
                    routers=[u.addrs()[0]],
                    workloads=["only-u=echo"],
                    eth_key_seed=seed_hex("stake-node"),
                )
            )
            nursery.start_soon(node.run, stop)

            def b_takes_u() -> bool:
                held = b.mesh.summaries.get(u.me)
                return (
                    u.me in b.mesh.links and held is not None and "only-u" in held.summary.workloads
                )

            relayed = f"dropped summary relayed by {b.me}: reason=summary-unstaked-origin"
            await until(b_takes_u, "B to take U as a neighbour serving only-u")
            await until(lambda: logged(caplog, relayed) >= 4, "A to refuse U's relayed summaries")
            await until(lambda: b.me in a.mesh.links, "A to measure its link to B")

            # A refused U as a neighbour, for U's stake, and holds nothing of U.
            refusal = f"refused mesh link with router {u.me}: reason=summary-unstaked-origin"
            assert logged(caplog, refusal) >= 1
            assert mesh_links(a, "refused") >= 1
            assert agent_errors(a, "summary-unstaked-origin") >= 4
            assert u.me not in a.mesh.summaries and u.me not in a.mesh.links
            assert u.me not in a.mesh.seen
            # B relayed U's summaries in good faith: counted, but not held against B.
            assert a.conduct.strikes == {} and mesh_links(a, "cut-off") == 0
            assert b.me in a.mesh.summaries

            # U is not a next hop for A, while B (which takes U) forwards to it.
            async with caller([a.addrs()[0], b.addrs()[0]]) as host:
                via_a = await invoke(host, ID.from_base58(a.me), "only-u", b"x", timeout_s=10)
                via_b = await invoke(host, ID.from_base58(b.me), "only-u", b"y", timeout_s=10)
            assert not via_a.ok and via_a.error == "no-node", via_a
            assert via_b.ok and via_b.hops == 1 and via_b.output == b"y", via_b
            assert meshlib.next_hop(a.mesh, "only-u", trio.current_time()) is None
            stop.set()


async def test_neighbour_relaying_forgeries__cut_off_until_cool_down__replays_never_count(caplog):
    caplog.set_level(logging.INFO)
    stop = trio.Event()
    a = RouterAgent(config("stake-a", [eth_address("stake-a"), M.eth.address, C.eth.address]))
    # Long enough for the refusals below to fall within it on a loaded machine.
    a.conduct = Conduct(replace(MESH_CONDUCT, strikes=3, window_s=60.0, cool_down_s=3.0))
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.run, stop)
            await a.ready.wait()
            async with mesh_peer(M, a.addrs()[0]) as open_link, mesh_peer(M2, a.addrs()[0]) as m2:
                stream = await open_link(M.signed(seq=100))
                await until(lambda: M.peer in a.mesh.summaries, "A to admit M")

                # Gossip redundancy: the same summaries over and over, and older ones.
                for _ in range(20):
                    await stream.write(encode(C.signed(seq=5)))
                    await stream.write(encode(C.signed(seq=4)))
                    await stream.write(encode(M.signed(seq=100)))
                    await stream.write(encode(M.signed(seq=99)))
                # A fresh summary after them all: once A takes it, it has read every one before.
                await stream.write(encode(M.signed(seq=101)))
                await until(lambda: a.mesh.seen.get(M.peer) == 101, "A to read the repeats")
                assert a.mesh.seen.get(C.peer) == 5
                assert a.conduct.strikes == {}
                assert mesh_links(a, "cut-off") == 0 and M.peer in a.mesh.summaries

                # Forgeries, each with a fresh seq (a stale one would not even be checked):
                # M lowers C's advertised time under C's signature.
                for seq in (6, 7, 8):
                    forged = replace(C.signed(seq), body=summary_body(C.summary(seq, mm=1)))
                    await stream.write(encode(forged))
                await until(lambda: mesh_links(a, "cut-off") == 1, "A to cut M off")
                banned_until = a.conduct.banned[M.peer]
                assert a.conduct.banned[M.eth.address] == banned_until
                assert await reset_by_router(stream)
                cut = f"cut off mesh neighbour {M.peer} ({M.eth.address}): 3 bad summaries"
                assert logged(caplog, cut) == 1
                assert logged(caplog, "last reason=summary-wrong-signer") == 1
                assert agent_errors(a, "summary-wrong-signer") == 3
                assert M.peer not in a.mesh.summaries and M.peer not in a.mesh.links
                assert a.mesh.seen[C.peer] == 5  # none of the forgeries was taken

                # During the cool-down M is refused: under its peer id at once, under a new
                # peer id once its binding shows the address.
                assert await reset_by_router(await open_link())
                assert await reset_by_router(await m2())
                for peer, detail in ((M.peer, "peer id"), (M2.peer, f"address {M.eth.address}")):
                    refused = (
                        f"refused mesh link with router {peer}: reason=mesh-cooling-down "
                        f"({detail} cut off"
                    )
                    await until(lambda refused=refused: logged(caplog, refused) == 1, refused)
                assert mesh_links(a, "refused") == 2 and mesh_links(a, "admitted") == 1
                assert M.peer not in a.mesh.summaries and M2.peer not in a.mesh.summaries

                # After it, M may link again.
                assert trio.current_time() < banned_until  # the refusals were within it
                await until(
                    lambda: meshlib.cool_down_left(a.conduct, M.peer, trio.current_time()) == 0,
                    "M's cool-down to end",
                    timeout_s=30,
                )
                await open_link()
                await until(lambda: M.peer in a.mesh.summaries, "A to admit M again")
                assert mesh_links(a, "admitted") == 2
            stop.set()


async def test_neighbour_flooding_duplicates__excess_dropped_then_cut_off(caplog):
    caplog.set_level(logging.INFO)
    stop = trio.Event()
    # 50 messages a second beyond 4 a summary interval per known origin; a burst twice that.
    staked = [eth_address("stake-a"), M.eth.address, C.eth.address]
    a = RouterAgent(config("stake-a", staked, mesh_rate_per_s=50))
    a.conduct = Conduct(replace(MESH_CONDUCT, strikes=3, window_s=60.0, cool_down_s=60.0))
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.run, stop)
            await a.ready.wait()
            async with mesh_peer(M, a.addrs()[0]) as open_link:
                stream = await open_link(M.signed(seq=100))
                await until(lambda: M.peer in a.mesh.summaries, "A to admit M")
                # A burst within the allowance, as a neighbour relaying a backlog sends: taken.
                for seq in range(5, 45):
                    await stream.write(encode(C.signed(seq=seq)))
                await until(lambda: a.mesh.seen.get(C.peer) == 44, "A to take the burst")
                assert agent_errors(a, meshlib.MESH_FLOOD) == 0 and a.conduct.strikes == {}

                # The same summary, as fast as M can write it, until A ends the link.
                duplicate = encode(C.signed(seq=44))
                try:
                    while mesh_links(a, "cut-off") == 0:
                        await stream.write(duplicate * 20)
                except NET_ERRORS:
                    pass
                # Three strikes, a second apart (the until's deadline bounds how long it takes).
                await until(lambda: mesh_links(a, "cut-off") == 1, "A to cut M off", timeout_s=20)
                assert agent_errors(a, meshlib.MESH_FLOOD) > 100
                assert logged(caplog, f"mesh neighbour {M.peer} sends over") == 3
                cut = f"cut off mesh neighbour {M.peer} ({M.eth.address}): 3 bad summaries"
                assert logged(caplog, cut) == 1 and logged(caplog, "last reason=mesh-flood") == 1
                assert a.conduct.banned[M.peer] > trio.current_time()
                assert await reset_by_router(stream)
            stop.set()


async def test_router_we_dial__cut_off__not_redialled_until_cool_down_ends(caplog):
    caplog.set_level(logging.INFO)
    staked = [eth_address("stake-a"), eth_address("stake-b")]
    stop = trio.Event()
    # Longer than the dialler's backoff after the cut (at most 0.75 s), so it sees the ban.
    cool_down_s = 2.5
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            b = RouterAgent(config("stake-b", staked))
            nursery.start_soon(b.run, stop)
            await b.ready.wait()
            a = RouterAgent(config("stake-a", staked, peers=[b.addrs()[0]]))
            a.conduct = Conduct(replace(MESH_CONDUCT, strikes=2, cool_down_s=cool_down_s))
            nursery.start_soon(a.run, stop)
            await a.ready.wait()
            await until(lambda: b.me in a.mesh.summaries, "A to admit B")

            # B turns bad: its own summaries now carry a body it did not sign.
            honest = b.mesh_links.own_summary

            def tampered() -> SignedSummary:
                signed = honest()
                summary = replace(open_summary(signed), workloads={"mm": 1})
                return replace(signed, body=summary_body(summary))

            b.mesh_links.own_summary = tampered
            await until(lambda: mesh_links(a, "cut-off") == 1, "A to cut B off")
            banned_until = a.conduct.banned[b.me]
            # The cut is counted first; the link's task then ends and drops the link.
            await until(lambda: b.me not in a.mesh.links, "A to drop its link to B")
            waits = f"mesh link to router {b.me} waits"
            await until(lambda: logged(caplog, waits) >= 1, "A to wait out the cool-down")

            # Honest again: A dials B once the cool-down is over, not before.
            b.mesh_links.own_summary = honest
            up = f"mesh link to router {b.me} up"
            await until(lambda: logged(caplog, up) == 2, "A to link to B again")
            assert trio.current_time() >= banned_until
            assert logged(caplog, f"refused mesh link with router {b.me}") == 0  # no early dial
            assert mesh_links(a, "admitted") >= 2
            stop.set()
