"""Invocation bench: what checking signed orders and receipts costs routed traffic.

Run: ``.venv/bin/python -m bench.invocation`` (a few minutes on a 2-core machine); ``--quick``
runs it at small sizes in seconds to show it still works.

Two phases:

- ``check_cost``: the time of each check on one request, in this process, with the chain view
  in memory: the router's admission (decode, signature recovery, rate, socket, deadline, nonce,
  escrow headroom), the node's receipt (hash, price, signature), the router's receipt check and
  countersignature, and the caller's receipt check.
- ``routed``: a real anvil with the contracts, a compute node (``--chain-rpc``: it prices and
  signs receipts from the chain) linked to two router processes that read the same chain: one
  checks every order (``--check-invocations``), the other routes unchecked. Callers here send
  ``echo`` requests at 1, 10 and 100 in flight to each router in turn, rounds interleaved; the
  checked callers send pre-signed orders and check every receipt. Reported: routed requests a
  second, p50 and p99 latency, the cost of the checks (1 - checked / unchecked throughput) and
  the hit rate of the checking router's market view over the run. Each round also reads the CPU
  time the router, the node and the callers' process spent in it (``cpu_us``, per routed
  request): on a machine where all three share the cores, the checks' cost in throughput is the
  sum of what they add on every side, and the router's own figure is what a router operator
  pays.
- ``secp256k1_floor_us`` in ``check_cost``: the libsecp256k1 calls alone that one checked
  request needs (the router recovers the order's and the receipt's signers and signs the record,
  the node signs the receipt, the caller recovers the receipt's signer), so the floor under any
  check path in any language on this machine.

Writes ``bench/results/invocation.json`` and prints a table.
"""

import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import trio  # noqa: E402
from eth_account import Account  # noqa: E402
from libp2p.peer.id import ID  # noqa: E402

from bench._common import bench_parser, write_json  # noqa: E402
from offchain.chain.anvil import start_anvil  # noqa: E402
from offchain.chain.chain_client import ChainClient, devnet_account  # noqa: E402
from offchain.chain.deploy import deploy_contracts  # noqa: E402
from offchain.chain.invocation_market import deposit_escrow, mint_socket  # noqa: E402
from offchain.crypto.keys import generate_keypair, keypair_from_private_key  # noqa: E402
from offchain.net.session import SessionPool  # noqa: E402
from offchain.net.streams import NET_ERRORS  # noqa: E402
from offchain.protocol import protocol_ids as protocols  # noqa: E402
from offchain.protocol.errors import InputRejected  # noqa: E402
from offchain.protocol.frames import FrameError  # noqa: E402
from offchain.protocol.invocation import (  # noqa: E402
    EscrowInfo,
    InvocationDomain,
    MemoryChainView,
    NodeInfo,
    SocketInfo,
)
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER  # noqa: E402
from offchain.protocol.wire import Request, Response  # noqa: E402
from offchain.routers import records  # noqa: E402
from offchain.routers.admission import Admission, AdmissionPolicy  # noqa: E402
from offchain.routers.router_client import (  # noqa: E402
    caller,
    new_request_id,
    order_for,
    sign_order,
    signed_request,
    verify_receipt,
)
from offchain.runtime.spawn import (  # noqa: E402
    AgentProcess,
    router_process,
    seed_hex,
    stop_all,
    worker_process,
)
from offchain.workers import receipts  # noqa: E402

RESULTS_FILE = "invocation.json"
CALLERS = (1, 10, 100)
ROUND_S = 5.0
REPEATS = 3
CHECK_SAMPLES = 2_000
WORKLOAD = "echo"
PAYLOAD = b"x" * 64
# One wei an invocation: the user's escrow never runs out during the bench.
PRICE = 1
ESCROW = 10**24
READY_TIMEOUT_S = 120.0


# ---------------------------------------------------------------- the cost of one check


def _timed(fn, items) -> tuple[float, list]:  # type: ignore[no-untyped-def]
    """Return the mean microseconds of ``fn`` over ``items``, and its results."""
    started = time.perf_counter()
    out = [fn(item) for item in items]
    return (time.perf_counter() - started) / len(items) * 1e6, out


def bench_check_cost(samples: int) -> dict:
    """Return the mean time, in microseconds, of each check on one request."""
    user = Account.from_key(b"\x31" * 32)
    node = keypair_from_private_key(b"\x32" * 32)
    router = keypair_from_private_key(b"\x33" * 32)
    domain = InvocationDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
    view = MemoryChainView(
        sockets={1: SocketInfo(user.address, WORKLOAD, PRICE, node.address, 2**40)},
        nodes={node.address: NodeInfo(True, False, frozenset({WORKLOAD}))},
        escrows={user.address: EscrowInfo(ESCROW)},
    )
    admission = Admission(domain, view, AdmissionPolicy(rate_per_s=1e12, burst=10**9))
    now = int(time.time())
    orders = [
        order_for(user.address, 1, WORKLOAD, PAYLOAD, PRICE, nonce=n, deadline=now + 3_600)
        for n in range(samples)
    ]
    requests = [signed_request(o, sign_order(user, o, domain), PAYLOAD) for o in orders]
    router_bytes = bytes.fromhex(router.address[2:])

    def node_sign(request: Request) -> Response:
        served = Request(
            request.request_id,
            request.workload,
            request.payload,
            invocation=request.invocation,
            signature=request.signature,
            router=router_bytes,
        )
        signed = receipts.sign(
            receipts.accept(served, domain, view), PAYLOAD, 1, node, domain, view
        )
        return Response(
            request.request_id,
            True,
            output=PAYLOAD,
            receipt=signed.encoded,
            node_signature=signed.signature,
        )

    admit_us, tickets = _timed(lambda r: admission.admit(r, now), requests)
    node_us, answers = _timed(node_sign, requests)

    def countersign(pair):  # type: ignore[no-untyped-def]
        ticket, answer = pair
        return records.countersign(
            ticket,
            answer,
            node_address=node.address,
            router=router.address,
            router_key=router.private_key,
            domain=domain,
            view=view,
        )

    record_us, _ = _timed(countersign, list(zip(tickets, answers, strict=True)))
    verify_us, _ = _timed(
        lambda pair: verify_receipt(pair[1], pair[0], domain),
        list(zip(orders, answers, strict=True)),
    )
    return {
        "samples": samples,
        "secp256k1_floor_us": round(_secp256k1_floor_us(samples), 1),
        "router_admit_us": round(admit_us, 1),
        "node_receipt_us": round(node_us, 1),
        "router_receipt_and_countersign_us": round(record_us, 1),
        "router_total_us": round(admit_us + record_us, 1),
        "caller_verify_us": round(verify_us, 1),
    }


def _secp256k1_floor_us(samples: int) -> float:
    """Return the mean microseconds of the libsecp256k1 calls alone that one checked request needs.

    Three recoveries (the order's signer at the router, the receipt's signer at the router and
    at the caller) and two signatures (the node's receipt, the router's record).
    """
    from coincurve import PrivateKey, PublicKey  # noqa: PLC0415

    key = PrivateKey(b"\x34" * 32)
    digests = [os.urandom(32) for _ in range(samples)]
    pairs = [(d, key.sign_recoverable(d, hasher=None)) for d in digests]
    started = time.perf_counter()
    for digest, signature in pairs:
        for _ in range(3):
            PublicKey.from_signature_and_message(signature, digest, hasher=None)
        for _ in range(2):
            key.sign_recoverable(digest, hasher=None)
    return (time.perf_counter() - started) / samples * 1e6


# ---------------------------------------------------------------- routed, checked or not


def _account(label: str):  # type: ignore[no-untyped-def]
    return Account.from_key(generate_keypair(bytes.fromhex(seed_hex(label))).private_key)


def _open_market(client: ChainClient) -> tuple[Account, int]:
    """Stake the bench's node and routers, mint the node's socket to a user with escrow."""
    deployer = devnet_account(0)
    staking, token = client["Staking"], client["EMCToken"]
    for label, role in (("inv-node", ROLE_COMPUTE), ("inv-checked", ROLE_ROUTER),
                        ("inv-unchecked", ROLE_ROUTER)):  # fmt: skip
        account = _account(label)
        client.w3.provider.make_request("anvil_setBalance", [account.address, hex(10**20)])
        amount = staking.functions.min_stake(role).call()
        client.transact(deployer, token.functions.transfer(account.address, amount))
        client.transact(account, token.functions.approve(staking.address, amount))
        client.transact(account, staking.functions.stake(role, amount))
    node = _account("inv-node")
    client.transact(node, staking.functions.declare_node("", 1_024, 1, [WORKLOAD]))
    user = devnet_account(12)
    socket_id = mint_socket(client, node, user.address, WORKLOAD, PRICE)
    deposit_escrow(client, deployer, user, ESCROW)
    return user, socket_id


def _start_agents(work: Path, url: str, chain_id: int) -> dict[str, AgentProcess]:
    chain = ["--chain-rpc", url, "--deployment", str(work / "deployments" / "local.json"),
             "--chain-id", str(chain_id)]  # fmt: skip
    quiet = ["--metrics-port", "0", "--log-level", "WARNING"]
    agents: dict[str, AgentProcess] = {}
    for name, extra in (("checked", ["--check-invocations", "--invocation-rate", "1e9"]),
                        ("unchecked", [])):  # fmt: skip
        seed = ["--eth-key-seed", seed_hex(f"inv-{name}")]
        agents[name] = router_process(work, name, [*quiet, *chain, *seed, *extra]).start()
    for process in agents.values():
        process.wait_ready(READY_TIMEOUT_S)
    node_args = [*quiet, *chain, "--eth-key-seed", seed_hex("inv-node"), "--links", "2",
                 "--parallel", "64", "--queue-size", "256", "--workload", WORKLOAD]  # fmt: skip
    routers = [agents[name].info["addrs"][0] for name in ("checked", "unchecked")]
    agents["node"] = worker_process(work, "node", routers, node_args).start()
    agents["node"].wait_ready(READY_TIMEOUT_S)
    return agents


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Orders:
    """Pre-signed orders (signing is the caller's work, not the route's), made ahead in batches."""

    def __init__(self, user, socket_id: int, domain: InvocationDomain) -> None:  # type: ignore[no-untyped-def]
        self.user, self.socket_id, self.domain = user, socket_id, domain
        self.ready: list[tuple] = []

    def make(self, count: int) -> None:
        deadline = int(time.time()) + 3_600
        for _ in range(count):
            order = order_for(self.user.address, self.socket_id, WORKLOAD, PAYLOAD, PRICE,
                              deadline=deadline)  # fmt: skip
            self.ready.append((order, sign_order(self.user, order, self.domain)))

    def take(self) -> tuple:
        return self.ready.pop()


async def _round(pool: SessionPool, target: ID, callers: int, seconds: float,
                 orders: _Orders | None) -> dict:  # fmt: skip
    """Run ``callers`` in a loop for ``seconds``; return count, latencies and errors."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = trio.current_time() + seconds

    def fail(code: str) -> None:
        errors[code] = errors.get(code, 0) + 1

    async def one_caller() -> None:
        while trio.current_time() < deadline:
            order = None
            if orders is None:
                request = Request(new_request_id(), WORKLOAD, PAYLOAD, (), 10_000)
            else:
                order, signature = orders.take()
                request = signed_request(order, signature, PAYLOAD, 10.0)
            started = time.perf_counter()
            try:
                with trio.fail_after(10):
                    response = await pool.request(target, request)
                if order is not None:
                    verify_receipt(response, order, orders.domain)  # type: ignore[union-attr]
                elif not response.ok:
                    fail(response.error)
                    continue
            except InputRejected as exc:  # the receipt refused (or not CBOR at all)
                fail(exc.reason)
                continue
            except (trio.TooSlowError, FrameError, *NET_ERRORS) as exc:
                fail(type(exc).__name__)
                continue
            except RuntimeError as exc:  # InvocationFailed: the router refused
                fail(str(exc).split(":", 1)[0])
                continue
            latencies.append((time.perf_counter() - started) * 1_000)

    async with trio.open_nursery() as nursery:
        for _ in range(callers):
            nursery.start_soon(one_caller)
    return {"count": len(latencies), "latencies": latencies, "errors": errors}


def bench_routed(work: Path, callers_levels: tuple[int, ...], round_s: float,
                 repeats: int) -> dict:  # fmt: skip
    """Return routed throughput and latency at each level, checked and unchecked."""
    agents: dict[str, AgentProcess] = {}
    with start_anvil() as anvil:
        deploy_contracts(anvil.url, fresh=True, deployments_dir=work / "deployments",
                         abi_dir=work / "abi")  # fmt: skip
        client = ChainClient(anvil.url, deployments_dir=work / "deployments", abi_dir=work / "abi")
        user, socket_id = _open_market(client)
        chain_id = client.w3.eth.chain_id
        domain = InvocationDomain(chain_id, client["ComputeMarket"].address)
        try:
            agents = _start_agents(work, anvil.url, chain_id)
            orders = _Orders(user, socket_id, domain)
            results = trio.run(_measure, agents, orders, callers_levels, round_s, repeats)
            results["view_hits"] = _metric(
                agents["checked"], 'emc_router_market_view_answers{answer="hit"}'
            )
            results["view_misses"] = _metric(
                agents["checked"], 'emc_router_market_view_answers{answer="miss"}'
            )
            asked = results["view_hits"] + results["view_misses"]
            results["view_hit_rate"] = round(results["view_hits"] / asked, 4) if asked else None
            return results
        finally:
            stop_all(list(agents.values()))


def _metric(process: AgentProcess, name: str) -> float:
    import re  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    port = process.info["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def _measure(
    agents: dict[str, AgentProcess],
    orders: _Orders,
    callers_levels: tuple[int, ...],
    round_s: float,
    repeats: int,
) -> dict:
    targets = {
        name: ID.from_base58(agents[name].info["peer_id"]) for name in ("checked", "unchecked")
    }
    addrs = [agents[name].info["addrs"][0] for name in ("checked", "unchecked")]
    out: dict = {"levels": {}}
    async with caller(addrs) as host, SessionPool(host, protocols.INVOKE) as pool:
        await _wait_linked(pool, targets)
        for callers in callers_levels:
            rounds: dict[str, list[dict]] = {"checked": [], "unchecked": []}
            for _ in range(repeats):
                for kind in ("unchecked", "checked"):
                    if kind == "checked":
                        # Enough for the fastest round seen yet at this level, twice over.
                        best = max((r["count"] for r in rounds["unchecked"]), default=2_000)
                        orders.make(max(0, 2 * best + 200 - len(orders.ready)))
                    sides = {"router": agents[kind].pid, "node": agents["node"].pid}
                    before = _cpu_seconds(sides)
                    sample = await _round(pool, targets[kind], callers, round_s,
                                          orders if kind == "checked" else None)  # fmt: skip
                    spent = _cpu_seconds(sides)
                    sample["cpu_s"] = {side: spent[side] - before[side] for side in spent}
                    rounds[kind].append(sample)
            level: dict = {}
            for kind, samples in rounds.items():
                median = sorted(samples, key=lambda r: r["count"])[len(samples) // 2]
                errors: dict[str, int] = {}
                for sample in samples:
                    for code, n in sample["errors"].items():
                        errors[code] = errors.get(code, 0) + n
                level[kind] = {
                    "rps": round(median["count"] / round_s, 1),
                    "cpu_us": {
                        side: round(seconds / median["count"] * 1e6, 1) if median["count"] else None
                        for side, seconds in median["cpu_s"].items()
                    },
                    "p50_ms": round(_pct(median["latencies"], 0.5), 2),
                    "p99_ms": round(_pct(median["latencies"], 0.99), 2),
                    "errors": errors,
                }
            unchecked = level["unchecked"]["rps"]
            level["check_cost_fraction"] = (
                round(1 - level["checked"]["rps"] / unchecked, 3) if unchecked else None
            )
            out["levels"][str(callers)] = level
    return out


def _cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """Return the CPU seconds (user and system) each named process and this one have used."""
    spent = {}
    for side, pid in pids.items():
        times = psutil.Process(pid).cpu_times()
        spent[side] = times.user + times.system
    own = resource.getrusage(resource.RUSAGE_SELF)
    spent["callers"] = own.ru_utime + own.ru_stime
    return spent


async def _wait_linked(pool: SessionPool, targets: dict[str, ID]) -> None:
    """Return once both routers answer an unchecked request (the node has linked to both)."""
    with trio.fail_after(READY_TIMEOUT_S):
        for name in ("unchecked",):
            while True:
                request = Request(new_request_id(), WORKLOAD, PAYLOAD, (), 5_000)
                response = await pool.request(targets[name], request)
                if response.ok:
                    break
                await trio.sleep(0.2)


# ---------------------------------------------------------------- output


def print_table(results: dict) -> None:
    cost = results["check_cost"]
    print(f"\n{'one request':<44}{'microseconds':>16}")
    for key in ("secp256k1_floor_us", "router_admit_us", "node_receipt_us",
                "router_receipt_and_countersign_us", "router_total_us",
                "caller_verify_us"):  # fmt: skip
        print(f"{key:<44}{cost[key]:>16}")
    routed = results.get("routed")
    if not routed:
        return
    print(f"\n{'callers':<10}{'unchecked req/s':>18}{'checked req/s':>16}{'cost':>8}"
          f"{'p50/p99 unchecked':>22}{'p50/p99 checked':>20}")  # fmt: skip
    for callers, level in routed["levels"].items():
        u, c = level["unchecked"], level["checked"]
        print(f"{callers:<10}{u['rps']:>18}{c['rps']:>16}{level['check_cost_fraction']:>8}"
              f"{str(u['p50_ms']) + '/' + str(u['p99_ms']):>22}"
              f"{str(c['p50_ms']) + '/' + str(c['p99_ms']):>20}")  # fmt: skip
    print(f"\n{'CPU per request, us':<22}{'router':>16}{'node':>16}{'callers':>16}")
    for callers, level in routed["levels"].items():
        for kind in ("unchecked", "checked"):
            cpu = level[kind]["cpu_us"]
            print(f"{callers + ' ' + kind:<22}{cpu['router']:>16}{cpu['node']:>16}"
                  f"{cpu['callers']:>16}")  # fmt: skip
    print(f"market view hit rate: {routed['view_hit_rate']}")


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--only", choices=("check_cost", "routed"), help="run one phase")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    samples, levels, round_s, repeats = CHECK_SAMPLES, CALLERS, ROUND_S, REPEATS
    if args.quick:
        samples, levels, round_s, repeats = 50, (1, 10), 0.5, 1
    results: dict = {"machine": {"cpus": os.cpu_count()}, "quick": args.quick}
    if args.only in (None, "check_cost"):
        results["check_cost"] = bench_check_cost(samples)
    if args.only in (None, "routed"):
        with tempfile.TemporaryDirectory(prefix="emc-bench-invocation-") as work:
            results["routed"] = bench_routed(Path(work), levels, round_s, repeats)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = write_json(args.results_dir / RESULTS_FILE, results, merge=args.only is not None)
    print_table(results)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
