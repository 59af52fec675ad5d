"""The compute node's agent: links to routers, runs the requests they send, reports load.

The node dials out (see ``connectivity``) and never listens unless ``listen`` is configured;
routers send their requests on the link streams it opened. Work runs with bounded parallelism and a
bounded queue: a node that is full answers ``busy`` at once, so the router can go elsewhere.
"""

import json
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import multiaddr
import trio

from offchain.chain.identity import encode_binding, make_binding
from offchain.crypto.keys import generate_keypair
from offchain.net.boundary import StreamGuard
from offchain.net.conduct import PEER_CONDUCT, ConductPolicy, PeerConduct
from offchain.net.host import identity_from_seed, listen_addrs_of, make_host
from offchain.net.limits import node_limits
from offchain.net.no_yield import NoYieldSemaphore
from offchain.net.session import ServeLimits
from offchain.net.streams import shut_down
from offchain.protocol.errors import InputRejected
from offchain.protocol.frames import KIB, MAX_BODY, MsgType
from offchain.protocol.invocation import ChainView, FollowingView, InvocationDomain
from offchain.protocol.wire import Hello, Request, Response
from offchain.runtime.metrics import AgentMetrics, make_metrics, serve_metrics
from offchain.workers import receipts
from offchain.workers.connectivity import LinkPolicy, RouterLinks

logger = logging.getLogger(__name__)

# A runner returns its output and the compute units it took, from the workload's declared cost.
Runner = Callable[[bytes], Awaitable[tuple[bytes, int]]]
# The declared cost of the built-in workloads: one unit an invocation.
BUILTIN_UNITS = 1
MAX_SLEEP_MS = 60_000
# The largest output a node computes: one RESPONSE frame, less room for the response's other
# fields (request id, error code and message, node id, hops and their CBOR framing).
RESPONSE_ROOM = 16 * KIB
MAX_OUTPUT_BYTES = MAX_BODY[MsgType.RESPONSE] - RESPONSE_ROOM


class WorkloadFailed(ValueError):
    """A workload refused its input; the caller gets the reason, and no retry is made."""


async def run_echo(payload: bytes) -> tuple[bytes, int]:
    """Return the input unchanged (the trivial workload)."""
    return payload, BUILTIN_UNITS


async def run_sleep(payload: bytes) -> tuple[bytes, int]:
    """Sleep for the number of milliseconds given as ASCII digits, then echo the input."""
    try:
        millis = int(payload.decode("ascii").split(":", 1)[0])
    except (UnicodeDecodeError, ValueError) as exc:
        raise WorkloadFailed("sleep wants '<milliseconds>[:anything]'") from exc
    if not 0 <= millis <= MAX_SLEEP_MS:
        raise WorkloadFailed(f"sleep of {millis} ms is out of range")
    await trio.sleep(millis / 1_000)
    return payload, BUILTIN_UNITS


BUILTIN_RUNNERS: dict[str, Runner] = {"echo": run_echo, "sleep": run_sleep}


def resolve_workloads(specs: list[str]) -> dict[str, Runner]:
    """Return runners by served name for specs like ``"echo"`` or ``"echo-b=echo"``."""
    out: dict[str, Runner] = {}
    for spec in specs:
        name, _, kind = spec.partition("=")
        kind = kind or name
        runner = BUILTIN_RUNNERS.get(kind) or _registry_runner(kind)
        if runner is None:
            raise ValueError(f"unknown workload {kind!r}")
        out[name] = runner
    return out


def _registry_runner(kind: str, max_output_bytes: int = MAX_OUTPUT_BYTES) -> Runner | None:
    """Return a runner for a workload of the registry (inputs and outputs as its codec's bytes).

    A request is refused from its declared shapes, before its data is decoded or any work is
    started, when its output would not fit ``max_output_bytes`` or its workload's limits.

    The registry pulls in Numba and PyTorch, so it is imported only when a node serves one
    of its workloads; a node serving only the built-in ones starts without them.
    """
    try:
        from offchain.workers import workloads  # noqa: PLC0415 - heavy, optional import
    except ImportError:
        return None
    try:
        workload = workloads.get_workload(kind)
    except workloads.UnknownWorkload:
        return None

    async def run(payload: bytes) -> tuple[bytes, int]:
        try:
            declared = workloads.read_header(payload)
            plan = workload.plan(
                {name: (h.dtype, h.shape) for name, h in declared.items()},
                max_output_bytes=max_output_bytes,
            )
            inputs = workloads.decode(payload)
            outputs = await trio.to_thread.run_sync(workload.run, inputs)
            # The units are the workload's declared cost of these shapes, not a measurement.
            return workloads.encode(outputs), plan.units
        except workloads.WorkloadError as exc:
            raise WorkloadFailed(f"{kind}: {exc}") from exc

    return run


@dataclass(frozen=True)
class NodeConfig:
    """Everything a compute node agent needs to start."""

    routers: list[str] = field(default_factory=list)
    links: int = 2
    workloads: list[str] = field(default_factory=lambda: ["echo"])
    e_power: int = 1
    parallel: int = 4
    queue_size: int = 64
    # A listening address only if configured: routers reach the node over its own dials.
    listen: str | None = None
    identity_seed: str | None = None
    eth_key_seed: str | None = None
    read_timeout_s: float = 5.0
    dial_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    # Longer than three of the router's longest ping periods (see RouterConfig).
    silence_s: float = 90.0
    # A peer refused this many times within a minute (malformed input and the like) is
    # disconnected and refused for ``cool_down_s`` (``net/boundary.py``).
    strikes: int = PEER_CONDUCT.strikes
    cool_down_s: float = PEER_CONDUCT.cool_down_s
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    ready_file: str | None = None
    log_level: str = "INFO"
    # Price and sign receipts for signed orders under the ComputeMarket of this deployment
    # (a record name in deployments/ or a path to a .json record) on this JSON-RPC endpoint,
    # which must be chain ``chain_id`` when set. Without it, signed orders are refused.
    chain_rpc: str | None = None
    deployment: str = "local"
    chain_id: int | None = None

    def __post_init__(self) -> None:
        if self.links < 1 or self.parallel < 1 or self.queue_size < 0:
            raise ValueError("links and parallel must be at least 1, queue_size at least 0")


def _seed(hex_seed: str | None) -> bytes | None:
    if hex_seed is None:
        return None
    data = bytes.fromhex(hex_seed.removeprefix("0x"))
    if len(data) != 32:
        raise ValueError("seeds are 32 bytes (64 hex digits)")
    return data


@dataclass(frozen=True)
class Pricing:
    """What a node signs receipts under: the invocation domain and the chain view of sockets."""

    domain: InvocationDomain
    view: ChainView


class NodeAgent:
    """One compute node: a libp2p host that dials routers and runs their requests.

    With ``pricing``, a request carrying a signed order is answered with a receipt signed by the
    node's staked key (``receipts``); without it, such a request is refused (``no-pricing``).
    A request without an order is served without a receipt, for routers that check none.
    """

    def __init__(
        self,
        config: NodeConfig,
        metrics: AgentMetrics | None = None,
        pricing: Pricing | None = None,
    ) -> None:
        if not config.routers:
            raise ValueError("a compute node needs at least one router")
        self.config = config
        self.pricing = pricing
        self._market_view = None
        if pricing is None and config.chain_rpc is not None:
            # Imported here: web3 adds half a second to the start of nodes that need none.
            from offchain.chain.invocation_market import open_market_view  # noqa: PLC0415

            # Reads the chain now: a wrong chain id or record is an error before we dial.
            domain, self._market_view = open_market_view(
                config.chain_rpc, config.deployment, config.chain_id
            )
            self.pricing = Pricing(domain, self._market_view)
        self.runners = resolve_workloads(config.workloads)
        self.host = make_host(identity_from_seed(_seed(config.identity_seed)), node_limits())
        self.me = self.host.get_id().to_string()
        self.eth = generate_keypair(_seed(config.eth_key_seed))
        self.binding = encode_binding(make_binding(self.eth, self.me))
        self.metrics = metrics or make_metrics("worker")
        # Routers are peers like any other: what their bytes raise ends one link, and a router
        # that keeps sending bad input is refused for a cool-down.
        self.guard = StreamGuard(
            self.host,
            self.metrics,
            PeerConduct(ConductPolicy(strikes=config.strikes, cool_down_s=config.cool_down_s)),
        )
        self.pending = 0
        # Free slots are taken without a scheduler trip (a semaphore, not a CapacityLimiter:
        # nothing here hands the limiter to threads).
        self.limiter = NoYieldSemaphore(config.parallel)
        self.links = RouterLinks(
            self.host,
            list(config.routers),
            self._hello,
            lambda: self.pending,
            LinkPolicy(
                links=config.links,
                backoff_initial_s=config.backoff_initial_s,
                backoff_max_s=config.backoff_max_s,
                silence_s=config.silence_s,
                dial_timeout_s=config.dial_timeout_s,
            ),
            random.Random(),
            handle=self._execute_timed,
            busy=self._busy,
            serve_limits=ServeLimits(
                frame_timeout_s=config.read_timeout_s,
                # The node's own queue answers busy; this only bounds a misbehaving router.
                max_in_flight=4 * (config.parallel + config.queue_size),
            ),
            guard=self.guard,
        )

    def _hello(self) -> Hello:
        return Hello(
            workloads=tuple(sorted(self.runners)),
            e_power=self.config.e_power,
            capacity=self.config.parallel + self.config.queue_size,
            queue_depth=self.pending,
            binding=self.binding,
        )

    async def run(self, stop: trio.Event) -> None:
        """Serve until ``stop`` is set."""
        listen = [multiaddr.Multiaddr(self.config.listen)] if self.config.listen else []
        with trio.CancelScope() as teardown:
            async with self.host.run(listen):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self.guard.run)
                    if self._market_view is not None:
                        nursery.start_soon(self._market_view.run)
                    nursery.start_soon(self.links.run)
                    nursery.start_soon(self._watch_links)
                    port = None
                    if self.config.metrics_port is not None:
                        port = serve_metrics(
                            self.metrics, self.config.metrics_port, self.config.metrics_host
                        )
                    self._write_ready_file(port)
                    logger.info(
                        "node up: workloads=%s listening=%s",
                        ",".join(sorted(self.runners)),
                        [str(a) for a in listen_addrs_of(self.host)] or "no",
                    )
                    await stop.wait()
                    logger.info("node stopping")
                    nursery.cancel_scope.cancel()
                await shut_down(self.host, teardown)

    async def _watch_links(self) -> None:
        while True:
            self.metrics.nodes.set(len(self.links.connected))
            self.metrics.connections.set(len(self.host.get_network().get_connections()))
            await self.links.changed.wait()

    def _write_ready_file(self, metrics_port: int | None) -> None:
        if self.config.ready_file is None:
            return
        path = Path(self.config.ready_file)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "peer_id": self.me,
                    "metrics_port": metrics_port,
                    "pid": os.getpid(),
                    "address": self.eth.address,
                }
            )
        )
        tmp.replace(path)

    async def _execute_timed(self, request: Request) -> Response:
        started = trio.current_time()
        response = await self.execute(request)
        self.metrics.latency.observe(trio.current_time() - started)
        self.metrics.requests.labels(outcome="ok" if response.ok else response.error).inc()
        return response

    def _busy(self, request: Request) -> Response:
        return Response(
            request.request_id, False, error="busy", message="node queue is full", node=self.me
        )

    async def execute(self, request: Request) -> Response:
        """Return the response to ``request``: run it, or refuse it as unknown or busy.

        A request with a signed order is refused before any work when the order is not this
        request's, and answered with the receipt of the output the node produced.
        """
        runner = self.runners.get(request.workload)
        if runner is None:
            return self._refuse(
                request, "unknown-workload", f"this node does not serve {request.workload}"
            )
        accepted = None
        if request.invocation:
            if self.pricing is None:
                return self._refuse(request, "no-pricing", "this node signs no receipts")
            view = self.pricing.view
            try:
                order = receipts.order_of(request)
                if isinstance(view, FollowingView):
                    # What is not read in time is refused as absent (an unknown socket).
                    await view.ready_for(order.socket_id, order.user, self.config.read_timeout_s)
                accepted = receipts.accept(request, self.pricing.domain, view, order)
            except InputRejected as exc:
                return self._refuse(request, exc.reason, str(exc))
        if self.pending >= self.config.parallel + self.config.queue_size:
            return self._busy(request)
        self.pending += 1
        self.metrics.in_flight.set(self.pending)
        try:
            async with self.limiter:
                logger.info(
                    "task start request=%s workload=%s", request.request_id.hex(), request.workload
                )
                output, units = await runner(request.payload)
        except WorkloadFailed as exc:
            return self._refuse(request, "workload-error", str(exc))
        finally:
            self.pending -= 1
            self.metrics.in_flight.set(self.pending)
        if accepted is None:
            return Response(request.request_id, True, output=output, node=self.me)
        assert self.pricing is not None
        try:
            signed = receipts.sign(
                accepted, output, units, self.eth, self.pricing.domain, self.pricing.view
            )
        except InputRejected as exc:
            return self._refuse(request, exc.reason, str(exc))
        return Response(
            request.request_id,
            True,
            output=output,
            node=self.me,
            receipt=signed.encoded,
            node_signature=signed.signature,
        )

    def _refuse(self, request: Request, code: str, message: str) -> Response:
        return Response(request.request_id, False, error=code, message=message, node=self.me)
