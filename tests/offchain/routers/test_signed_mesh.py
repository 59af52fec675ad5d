"""A tampering mesh neighbour, on loopback: its forged summaries are dropped, the genuine ones kept.

Router A runs in-process with honest router B behind it. M is a host with a staked router's
keys that opens a mesh stream to A (presenting its own signed summary first) and relays
summaries "from" router C (whose keys the test holds; C itself never runs): some tampered, one
genuine. A must drop each bad one with its reason counted, keep M's stream up, accept the
genuine one and relay C's signed bytes unchanged to B, which verifies them again.
"""

from dataclasses import replace

import trio

from offchain.protocol.wire import SignedSummary, Summary, encode
from offchain.routers.agent import RouterAgent
from offchain.routers.config import RouterConfig
from offchain.routers.mesh import MESH_CONDUCT, Conduct
from offchain.routers.signing import sign_summary, summary_body
from offchain.runtime.spawn import seed_hex
from tests.offchain.routers.routernet import MeshKeys, eth_address, mesh_peer
from tests.offchain.routers.routernet import agent_errors as errors
from tests.waiting import wait_until

C = MeshKeys(b"router-c")
M = MeshKeys(b"router-m")
U = MeshKeys(b"router-u")  # bound and signing correctly, but not staked as a router
ROUTERS = [eth_address("signed-a"), eth_address("signed-b"), C.eth.address, M.eth.address]


def config(label: str, **kwargs) -> RouterConfig:
    return RouterConfig(
        summary_interval_s=0.2, eth_key_seed=seed_hex(label), staked_routers=ROUTERS, **kwargs
    )


async def test_tampered_relayed_summaries__dropped_and_counted__genuine_one_relayed_intact():
    stop = trio.Event()
    a = RouterAgent(config("signed-a"))
    # This test checks each refusal on one stream; cutting M off is test_mesh_conduct's.
    a.conduct = Conduct(replace(MESH_CONDUCT, strikes=100))
    seq = 10
    genuine = sign_summary(Summary(C.peer, seq, {}, {"mm": 50_000}), C.eth, C.binding)
    cheaper = summary_body(Summary(C.peer, seq, {}, {"mm": 1}))
    bad: dict[str, SignedSummary] = {
        # M lowers C's advertised time, keeping C's signature.
        "summary-wrong-signer": replace(genuine, body=cheaper),
        # M speaks for C with its own key and its own binding.
        "summary-origin-mismatch": sign_summary(
            Summary(C.peer, seq, {}, {"mm": 1}), M.eth, M.binding
        ),
        "summary-bad-signature-length": replace(genuine, signature=genuine.signature[:40]),
        "summary-no-binding": replace(genuine, binding=b""),
        # Benign: not evidence against M (U may be staked in M's view, not in A's).
        "summary-unstaked-origin": U.signed(seq),
        "summary-expired-binding": sign_summary(
            C.summary(seq), C.eth, MeshKeys(b"router-c", ttl_s=-1).binding
        ),
    }
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.run, stop)
            await a.ready.wait()
            b = RouterAgent(config("signed-b", peers=[a.addrs()[0]]))
            nursery.start_soon(b.run, stop)
            await b.ready.wait()
            # the honest pair has exchanged signed summaries
            await wait_until(
                lambda: a.me in b.mesh.summaries and b.me in a.mesh.summaries,
                "the honest pair's summaries at each other",
            )

            async with mesh_peer(M, a.addrs()[0]) as open_link:
                stream = await open_link()
                for message in bad.values():
                    await stream.write(encode(message))
                # An oversized signature too, in the same session.
                await stream.write(encode(replace(genuine, signature=genuine.signature * 3)))
                # Frames are handled in order: the last one counted means all were.
                await wait_until(
                    lambda: errors(a, "summary-bad-signature-length") >= 2, "2 bad signatures at a"
                )
                assert C.peer not in a.mesh.summaries
                for reason in bad:
                    assert errors(a, reason) >= 1, reason
                assert errors(a, "summary-bad-signature-length") == 2
                # Five pieces of evidence against M; the unstaked origin and the expired
                # binding are not.
                assert len(a.conduct.strikes[M.peer]) == 5

                # The same stream still works: the genuine summary is accepted.
                await stream.write(encode(genuine))
                await wait_until(
                    lambda: C.peer in a.mesh.summaries and C.peer in b.mesh.summaries,
                    "C's summary at a and b",
                )
                assert a.mesh.summaries[C.peer].summary.workloads == {"mm": 50_000}
                # B got it from A, unchanged, and checked C's signature itself.
                assert b.mesh.summaries[C.peer].summary.workloads == {"mm": 50_000}
                assert b.mesh.seen[C.peer] == seq
                assert errors(b, "summary-wrong-signer") == 0

                # A replay of C's summary (or an older one) is ignored without a check.
                await stream.write(encode(genuine))
                await stream.write(encode(replace(genuine, body=cheaper)))
                # Then a fresh summary of C's: once A takes it, it has read both before it.
                fresh = Summary(C.peer, seq + 1, {}, {"mm": 50_000})
                await stream.write(encode(sign_summary(fresh, C.eth, C.binding)))
                await wait_until(lambda: a.mesh.seen[C.peer] == seq + 1, "A to read the replays")
                assert errors(a, "summary-wrong-signer") == 1
                assert a.mesh.summaries[C.peer].summary.workloads == {"mm": 50_000}
                await stream.reset()
            stop.set()
