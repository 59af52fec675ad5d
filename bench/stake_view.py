"""The router's chain view of stake: how soon it sees a change, and what reading costs the RPC.

Against a real anvil with the contracts deployed, in one process, two configurations of
``StakeView`` read the same chain in turn:

* ``sweep_10s``: a sweep alone (every tracked address re-read every 10 s), the baseline;
* ``follow_1s``: the default (Staking events read every second, addresses they name read
  again, the sweep every 60 s as the safety net).

For each: the seconds from a ``stake`` transaction's receipt to the view's change callback
(``trials`` new accounts, each staked at a random moment), and the RPC load of holding
``tracked`` addresses for ``window_s``: HTTP requests and ``eth_call``s per minute.

And what one sweep costs the router: the CPU time (all threads of this process) and the wall
time of ``StakingReader.is_active`` for ``tracked`` addresses, per address, the median of
``READ_ROUNDS`` reads (the router's thread holds the GIL for that CPU time).

Usage: python -m bench.stake_view [--tracked 2000] [--trials 6] [--window 60] [--quick]
    [--results-dir DIR]
Writes bench/results/stake_view.json. ``--quick``: 20 addresses, 1 trial, every period a tenth.
"""

import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio
from eth_account import Account

from offchain.chain.rpc import RPC_BATCH, Rpc
from offchain.chain.stake_view import StakeView, StakingReader, connect_staking
from offchain.protocol.roles import ROLE_COMPUTE
from tests.offchain.chain.chainnet import StakingChain, staking_chain

from ._common import bench_parser

RESULTS_FILE = "stake_view.json"
CONFIGS = {"sweep_10s": (None, 10.0), "follow_1s": (1.0, 60.0)}  # name: (follow_s, refresh_s)
QUICK_SCALE = 0.1  # --quick: every period a tenth
READ_ROUNDS = 5


class CountingRpc(Rpc):
    """An ``Rpc`` that counts its HTTP requests and the ``eth_call``s in them."""

    requests = 0
    eth_calls = 0

    def _request(self, method: str, params: list) -> object:
        self.requests += 1
        return super()._request(method, params)

    def calls(self, calls, block=None):  # type: ignore[no-untyped-def]
        self.requests += -(-len(calls) // RPC_BATCH)
        self.eth_calls += len(calls)
        return super().calls(calls, block)


def counting_reader(chain: StakingChain) -> StakingReader:
    reader = connect_staking(chain.anvil.url, str(chain.record), chain_id=31337)
    reader.rpc = CountingRpc(reader.url, reader.timeout_s)
    return reader


async def measure(chain: StakingChain, follow_s: float | None, refresh_s: float, args) -> dict:
    reader = counting_reader(chain)
    view = StakeView(
        reader,
        refresh_s=refresh_s,
        follow_s=follow_s,
        max_pending=args.tracked + args.trials,
        lookups_per_s=2_000,
    )
    seen: dict[str, float] = {}
    view.subscribe(lambda address, _role, staked: staked and seen.setdefault(address, time.time()))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(view.run)
        # Held like connected nodes, never evicted: the sweep reads every one of them.
        for _ in range(args.tracked):
            view.hold(Account.create().address, ROLE_COMPUTE)
        while len(view) < args.tracked:
            await trio.sleep(0.2)
        rpc = reader.rpc
        requests, calls, started = rpc.requests, rpc.eth_calls, time.monotonic()
        await trio.sleep(args.window)
        minutes = (time.monotonic() - started) / 60
        load = {
            "rpc_requests_per_min": round((rpc.requests - requests) / minutes),
            "eth_calls_per_min": round((rpc.eth_calls - calls) / minutes),
        }
        delays = []
        pacing = random.Random(7)  # the same moments for every configuration
        for _ in range(args.trials):
            # Changes come at any moment, not just after a sweep.
            await trio.sleep(pacing.uniform(0, args.sweep_s))
            account = chain.account()
            assert await view.settle(account.address, ROLE_COMPUTE) is False
            view.hold(account.address, ROLE_COMPUTE)
            await trio.to_thread.run_sync(chain.stake, account, ROLE_COMPUTE)
            mined = time.time()  # the receipt is in: the change is on the chain
            while account.address not in seen:
                await trio.sleep(0.01)
            delays.append(seen[account.address] - mined)
        nursery.cancel_scope.cancel()
    return {
        "follow_s": follow_s,
        "refresh_s": refresh_s,
        "change_seen_s": {
            "median": round(statistics.median(delays), 2),
            "max": round(max(delays), 2),
            "all": [round(d, 2) for d in delays],
        },
        **load,
    }


def read_cost(chain: StakingChain, tracked: int) -> dict:
    """Return the CPU and wall microseconds per address of reading ``tracked`` addresses."""
    reader = connect_staking(chain.anvil.url, str(chain.record), chain_id=31337)
    keys = [(Account.create().address, ROLE_COMPUTE) for _ in range(tracked)]
    head = reader.head()
    reader.is_active(keys[:10], head)  # connections open, caches warm
    cpu, wall = [], []
    for _ in range(READ_ROUNDS):
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        assert reader.is_active(keys, head) == [False] * tracked
        cpu.append((time.process_time() - cpu_started) / tracked * 1e6)
        wall.append((time.perf_counter() - wall_started) / tracked * 1e6)
    return {
        "addresses": tracked,
        "cpu_us_per_address": round(statistics.median(cpu), 1),
        "wall_us_per_address": round(statistics.median(wall), 1),
    }


def print_table(results: dict) -> None:
    print(
        f"{'config':<11} {'seen median s':>14} {'seen max s':>11} {'RPC req/min':>12} "
        f"{'eth_call/min':>13}"
    )
    for name, r in results["configs"].items():
        seen = r["change_seen_s"]
        print(
            f"{name:<11} {seen['median']:>14} {seen['max']:>11} "
            f"{r['rpc_requests_per_min']:>12} {r['eth_calls_per_min']:>13}"
        )
    ratio = results["ratios_follow_to_sweep"]
    print(
        f"follow / sweep: seen median x{ratio['change_seen_median']}, "
        f"eth_calls x{ratio['eth_calls']}, requests x{ratio['rpc_requests']}"
    )
    read = results["sweep_read"]
    print(
        f"one sweep read of {read['addresses']} addresses: {read['cpu_us_per_address']} us CPU "
        f"and {read['wall_us_per_address']} us wall per address"
    )


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--tracked", type=int, default=2_000)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--window", type=float, default=60.0, help="seconds of RPC counting")
    args = parser.parse_args(argv if argv is not None else [])
    scale = QUICK_SCALE if args.quick else 1.0
    if args.quick:
        args.tracked, args.trials, args.window = 20, 1, 2.0  # two sweeps at a tenth
    periods = {
        name: (None if follow_s is None else follow_s * scale, refresh_s * scale)
        for name, (follow_s, refresh_s) in CONFIGS.items()
    }
    # Changes come at any moment within the longest sweep-only period.
    args.sweep_s = max(refresh_s for follow_s, refresh_s in periods.values() if not follow_s)
    with tempfile.TemporaryDirectory() as work, staking_chain(Path(work)) as chain:
        sweep_read = read_cost(chain, args.tracked)
        configs = {
            name: trio.run(measure, chain, follow_s, refresh_s, args)
            for name, (follow_s, refresh_s) in periods.items()
        }
    base, new = configs["sweep_10s"], configs["follow_1s"]
    results = {
        "machine": platform.platform(),
        "tracked": args.tracked,
        "trials": args.trials,
        "window_s": args.window,
        "configs": configs,
        "sweep_read": sweep_read,
        "ratios_follow_to_sweep": {
            "change_seen_median": round(
                new["change_seen_s"]["median"] / base["change_seen_s"]["median"], 3
            ),
            "eth_calls": round(new["eth_calls_per_min"] / base["eth_calls_per_min"], 3),
            "rpc_requests": round(new["rpc_requests_per_min"] / base["rpc_requests_per_min"], 3),
        },
    }
    path = args.results_dir / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
