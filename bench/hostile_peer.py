"""A hostile libp2p peer: malformed frames on every protocol an agent offers.

Used by the hostile-input tests and ``bench/hostile.py``, and by operators to check their own
agents. Two modes, each a separate process:

``attack ROUTER_ADDR``: connects to a router and, protocol by protocol, opens a stream and
writes one hostile frame (every known bomb, then random mutations of valid frames), then waits
for the router to reset the stream. When the router cuts it off (disconnects it and refuses it
for a cool-down) it checks that a reconnection is refused, then goes on as a new identity:
peer ids are free, so that is what a real attacker does. ``--rate`` paces the frames (per
second, over all ``--peers`` concurrent attackers), ``--seconds`` bounds the run.

``fake-router``: listens as a router would for compute nodes to link to it, and answers each
link with one hostile frame instead of requests and pings.

Both write a JSON report (``--report``) of what was sent and how the target answered.
"""

import argparse
import json
import logging
import math
import random
import signal
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

import multiaddr
import trio
from libp2p.abc import INetStream
from libp2p.peer.peerinfo import info_from_p2p_addr

from offchain.net.host import identity_from_seed, listen_addrs_of, make_host
from offchain.net.limits import node_limits
from offchain.net.streams import NET_ERRORS
from offchain.protocol import canonical_cbor
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.frames import FRAME_VERSION, HEADER, HEADER_SIZE, MsgType
from offchain.protocol.wire import (
    Hello,
    Join,
    Ping,
    RecordBatch,
    Request,
    SignedSummary,
    Summary,
    encode,
)
from offchain.routers.gossip import MESHSUB_PROTOCOLS

logger = logging.getLogger(__name__)


def _shared_dag(levels: int) -> bytes:
    """Return a map holding shareable values each made of two references to the one before.

    Shared references expand on re-encoding: the last level stands for 2**levels leaves.
    """
    items = [b"\xd8\x1c\x82\x00\x00"]  # shareable [0, 0], index 0
    for level in range(1, levels):
        ref = b"\xd8\x1d" + canonical_cbor.head(0, level - 1)
        items.append(b"\xd8\x1c\x82" + ref + ref)
    return b"\xa1\x61a" + canonical_cbor.head(4, levels) + b"".join(items)


# Bodies known to crash, stall or bloat a careless CBOR decoder.
BOMBS: list[bytes] = [
    bytes.fromhex("d81ca16161d81d00"),  # a map that contains itself
    _shared_dag(40),
    b"\xa1\x61a" + b"\x81" * 100_000 + b"\x00",  # nested a hundred thousand deep
    b"\xa1\x61a" + b"\xa1\x61a" * 50_000 + b"\x00",
    b"\xa1\x61a\x5a\xff\xff\xff\xff",  # a 4 GiB byte string, none of it present
    b"\xa1\x61a\x5b" + b"\xff" * 8,
    b"\xa1\x61a\x9b" + b"\xff" * 8,  # an array of 2**64 - 1 items
    b"\xbb" + b"\xff" * 8,
    b"\xa1\x61a\x9a\x00\xff\xff\xff" + b"\x00" * 64,  # a million items, 64 present
    b"\xbf\x61a\x00\xff",  # an indefinite map
    b"\xa1\x61a\x5f\x41a\xff",  # an indefinite byte string
    b"\xa1\x61a\xfb" + b"\x00" * 8,  # a float
    b"\xa1\x61a\xc2\x49" + b"\x01" * 9,  # a bignum (tag 2)
    b"\xa2\x61a\x00\x61a\x00",  # a repeated key
    b"\xa1\x62\xff\xfe\x00",  # a key that is not UTF-8
    b"\xa1\x18\x01\x00",  # a key that is not text
]
# Byte strings a mutation inserts: tags, indefinite and break codes, floats, huge heads.
TOKENS: list[bytes] = [
    b"\xd8\x1c",
    b"\xd8\x1d\x00",
    b"\xc0",
    b"\x9f",
    b"\xbf",
    b"\xff",
    b"\xfb" + b"\x00" * 8,
    b"\x5b" + b"\xff" * 8,
    b"\x9b\x7f" + b"\xff" * 7,
    b"\x81" * 64,
    b"\x18\x01",
    b"\xf7",
]

_SUMMARY = canonical_cbor.dumps(
    Summary("12D3KooWrouter", 3, {"12D3KooWx": 1}, {"echo": 1}).to_map()
)
# A record batch's items are opaque to the frame: their bytes are decoded by who settles them.
_RECORD = b"\xa5" + b"\x00" * 100
# The first message each protocol expects, valid: what mutations start from.
FIRST_MESSAGE = {
    protocols.NODE_CONTROL: Hello(("echo",), 1, 4, 0, b""),
    protocols.INVOKE: Request(b"r" * 16, "echo", b"payload", (), 5_000),
    protocols.MESH: SignedSummary(_SUMMARY, b"\x01" * 65, b"\x02" * 100),
    protocols.GOSSIP_JOIN: Join(b"\x03" * 100),
}
# Connections refused in a row after which an attacker gives up: its address is refused.
MAX_REFUSED_CONNECTIONS = 10
# What a router sends a node first on its link.
TO_NODE = (Ping(1), Request(b"r" * 16, "echo", b"payload", (), 5_000), RecordBatch((_RECORD,)))


def frame_of(msg_type: MsgType, body: bytes) -> bytes:
    """Return a frame with a consistent header around any body."""
    return HEADER.pack(FRAME_VERSION, int(msg_type), len(body)) + body


def mutate(frame: bytes, rng: random.Random) -> bytes:
    """Return ``frame`` with one structured mutation; the header usually stays consistent."""
    msg_type, body = MsgType(frame[1]), bytearray(frame[HEADER_SIZE:])
    kind = rng.choice(["flip", "insert", "delete", "length", "token", "deepen", "inflate"])
    at = rng.randrange(len(body) + 1)
    if kind == "flip" and at < len(body):
        body[at] = rng.randrange(256)
    elif kind == "insert":
        body[at:at] = rng.randbytes(rng.randint(1, 16))
    elif kind == "delete":
        del body[at : at + rng.randint(1, 16)]
    elif kind == "length":
        return frame[:2] + struct.pack(">I", rng.randrange(2**32)) + bytes(body)
    elif kind == "token":
        body[at:at] = rng.choice(TOKENS)
    elif kind == "deepen":
        depth = rng.randint(1, 60)
        body = bytearray(b"\xa1\x61a" + b"\x81" * depth + bytes(body))
    else:
        heads = [i for i, b in enumerate(body) if b >> 5 in (4, 5)]
        if heads:
            i = rng.choice(heads)
            count = rng.choice([24, 255, 65_535, 2**32 - 1, 2**64 - 1])
            body[i : i + 1] = canonical_cbor.head(body[i] >> 5, count)
    return frame_of(msg_type, bytes(body))


def hostile_frames(first: bytes, mutations: int, rng: random.Random) -> list[bytes]:
    """Return every bomb as a body of ``first``'s type, then ``mutations`` mutations of it."""
    msg_type = MsgType(first[1])
    return [frame_of(msg_type, bomb) for bomb in BOMBS] + [
        mutate(first, rng) for _ in range(mutations)
    ]


@dataclass
class Report:
    """What a hostile peer sent and how its target answered."""

    frames_sent: int = 0
    streams_refused: int = 0  # reset or closed by the target without an answer
    streams_answered: int = 0  # the target sent something back
    open_failed: int = 0  # a stream the target would not open (a cut-off peer)
    identities: int = 0
    cut_off: int = 0  # identities the target disconnected
    refused_after_cut_off: int = 0  # reconnections with a cut-off identity that were refused
    accepted_after_cut_off: int = 0
    gated: bool = False  # the target refused our connections before any handshake
    frames_left: int | None = None  # a fake router's hostile frames not yet sent
    by_protocol: dict[str, int] = field(default_factory=dict)


async def _await_refusal(stream: INetStream, timeout_s: float, keep_reading: bool = False) -> bool:
    """Return True once the target resets or closes ``stream``; False if it answered.

    With ``keep_reading``, what the target sends is ignored (a node's load reports) and only
    the end of the stream within ``timeout_s`` counts as a refusal.
    """
    with trio.move_on_after(timeout_s):
        while True:
            try:
                data = await stream.read(65_536)
            except Exception:  # noqa: BLE001 - a reset, in any of py-libp2p's many forms
                return True
            if not data:
                return True
            if not keep_reading:
                return False
    return False


async def _still_refused(addr: str, seed: bytes) -> bool:
    """Return True if a new connection with the cut-off identity ``seed`` gets no stream."""
    host = make_host(identity_from_seed(seed), node_limits())
    info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    async with host.run([]):
        try:
            with trio.fail_after(5):
                await host.connect(info)
                stream = await host.new_stream(info.peer_id, [protocols.INVOKE])
                await stream.write(encode(FIRST_MESSAGE[protocols.INVOKE]))
                return await _await_refusal(stream, 3)
        except (trio.TooSlowError, *NET_ERRORS):
            return True
        except Exception:  # noqa: BLE001 - any failure to talk is a refusal
            return True


async def attack(
    addr: str,
    report: Report,
    rng: random.Random,
    *,
    mutations: int,
    rate: float | None,
    seconds: float | None,
    rounds: int,
    check_cut_off: bool,
    concurrency: int = 1,
    only: str | None = None,
) -> None:
    """Send every protocol's hostile frames to the router at ``addr`` (see the module doc).

    ``concurrency`` streams are in flight at once per identity; ``rate`` paces them all.
    """
    info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    plan: list[tuple[str, bytes]] = []
    for protocol, message in FIRST_MESSAGE.items():
        plan += [(protocol, f) for f in hostile_frames(encode(message), mutations, rng)]
    for protocol in MESHSUB_PROTOCOLS:  # gossipsub's own framing: varint-prefixed protobuf
        plan += [(protocol, rng.randbytes(rng.randint(1, 64))) for _ in range(4)]
    if only is not None:
        plan = [(protocol, frame) for protocol, frame in plan if protocol == only]
    queue = [item for _round in range(rounds) for item in plan]
    queue.reverse()  # popped from the end, in plan order
    deadline = trio.current_time() + seconds if seconds is not None else math.inf
    gap = 1 / rate if rate else 0.0
    pace = {"next": trio.current_time()}

    async def send_one(host: object, protocol: str, frame: bytes) -> bool:
        """Send one frame on a new stream; return False if the stream would not open."""
        try:
            with trio.fail_after(5):
                stream = await host.new_stream(info.peer_id, [protocol])  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - a cut-off peer's streams fail in many ways
            report.open_failed += 1
            logger.debug("no stream: %s", exc)
            return False
        report.frames_sent += 1
        report.by_protocol[protocol] = report.by_protocol.get(protocol, 0) + 1
        try:
            await stream.write(frame)
        except Exception:  # noqa: BLE001 - reset under us: refused
            report.streams_refused += 1
            return True
        if await _await_refusal(stream, 5):
            report.streams_refused += 1
        else:
            report.streams_answered += 1
            try:
                await stream.reset()
            except Exception:  # noqa: BLE001 - already gone
                pass
        return True

    refused_in_a_row = 0
    while queue and trio.current_time() < deadline:
        if refused_in_a_row >= MAX_REFUSED_CONNECTIONS:
            report.gated = True  # the router refuses our address itself: nothing more to do
            return
        seed = rng.randbytes(32)
        report.identities += 1
        host = make_host(identity_from_seed(seed), node_limits())
        cut = trio.Event()
        async with host.run([]):
            try:
                with trio.fail_after(10):
                    await host.connect(info)
            except Exception:  # noqa: BLE001 - a refused connection fails in many ways
                report.open_failed += 1
                refused_in_a_row += 1
                continue
            refused_in_a_row = 0

            async def sender(host: object = host, cut: trio.Event = cut) -> None:
                while queue and not cut.is_set() and trio.current_time() < deadline:
                    if gap:
                        at = pace["next"]
                        pace["next"] = max(at + gap, trio.current_time() - 1)
                        await trio.sleep_until(at)
                    if not queue or cut.is_set():
                        return
                    protocol, frame = queue.pop()
                    if not await send_one(host, protocol, frame):
                        queue.append((protocol, frame))  # not sent: the next identity sends it
                        cut.set()

            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(sender)
        if cut.is_set():
            report.cut_off += 1
            if check_cut_off:
                if await _still_refused(addr, seed):
                    report.refused_after_cut_off += 1
                else:
                    report.accepted_after_cut_off += 1
                check_cut_off = False  # once is proof enough


async def fake_router(
    ready_file: Path, report_path: Path, rng: random.Random, mutations: int
) -> None:
    """Answer node links with hostile frames until stopped (see the module doc).

    Once every frame has been sent, each further link gets the first bomb again, so a node
    that has not cut us off yet keeps collecting evidence. The report is rewritten after
    every link.
    """
    frames: list[bytes] = []
    for message in TO_NODE:
        frames += hostile_frames(encode(message), mutations, rng)
    report = Report(identities=1)
    host = make_host(identity_from_seed(rng.randbytes(32)), node_limits())

    async def handle(stream: INetStream) -> None:
        try:
            await stream.read(65_536)  # the node's hello
            # Taken only once the link is up, so a link that fails before it loses no frame.
            frame = frames.pop(0) if frames else frame_of(MsgType.PING, BOMBS[0])
            # Counted before the write: a node that refuses the frame may reset the stream
            # while the write is still returning, after the bytes went out.
            report.frames_sent += 1
            await stream.write(frame)
            if await _await_refusal(stream, 2, keep_reading=True):
                report.streams_refused += 1
            else:
                report.streams_answered += 1
        except NET_ERRORS:
            report.streams_refused += 1
        finally:
            report.frames_left = len(frames)
            report_path.write_text(json.dumps(asdict(report), indent=1))
            await stream.reset()

    host.set_stream_handler(protocols.NODE_CONTROL, handle)
    async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        addrs = [str(a) for a in listen_addrs_of(host)]
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"addrs": addrs, "frames": len(frames)}))
        tmp.replace(ready_file)
        await trio.sleep_forever()


def cli() -> None:
    """Run the hostile peer from the command line (not ``main``: ``python -m bench`` runs those)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("attack", help="send hostile frames to a router")
    a.add_argument("router")
    a.add_argument("--mutations", type=int, default=20)
    a.add_argument("--rate", type=float, help="frames a second over all peers")
    a.add_argument("--seconds", type=float)
    a.add_argument("--rounds", type=int, default=1)
    a.add_argument("--peers", type=int, default=1, help="concurrent attackers")
    a.add_argument("--concurrency", type=int, default=1, help="streams in flight per attacker")
    a.add_argument("--only", help="attack this protocol only (e.g. /emc/invoke/2.0.0)")
    f = sub.add_parser("fake-router", help="answer node links with hostile frames")
    f.add_argument("--ready-file", type=Path, required=True)
    f.add_argument("--mutations", type=int, default=8)
    for p in (a, f):
        p.add_argument("--report", type=Path, required=True)
        p.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # py-libp2p logs every stream a cut-off peer fails to open; those failures are the point.
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    report = Report()

    async def run() -> None:
        if args.mode == "fake-router":
            await fake_router(
                args.ready_file, args.report, random.Random(args.seed), args.mutations
            )
            return
        async with trio.open_nursery() as nursery:
            for i in range(args.peers):
                nursery.start_soon(
                    lambda i=i: attack(
                        args.router,
                        report,
                        random.Random(args.seed * 1_000 + i),
                        mutations=args.mutations,
                        rate=args.rate / args.peers if args.rate else None,
                        seconds=args.seconds,
                        rounds=args.rounds,
                        check_cut_off=i == 0,
                        concurrency=args.concurrency,
                        only=args.only,
                    )
                )

    def interrupted(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # so that the report below is written on SIGTERM too

    signal.signal(signal.SIGTERM, interrupted)
    try:
        trio.run(run)
    except KeyboardInterrupt:
        pass
    finally:
        if args.mode == "attack":
            args.report.write_text(json.dumps(asdict(report), indent=1))


if __name__ == "__main__":
    cli()
