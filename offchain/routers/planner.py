"""The route planner: what a router does with a request, as data.

Pure: given the routing table, the mesh view, the router's in-flight counts, the request and
the nodes already tried, each function returns a decision; the agent carries it out (calls the
node, forwards to the neighbour, or answers the refusal) and asks again with what it learnt.
Nothing here does I/O or reads a clock, so tests drive it directly.

One request's life: ``admit`` (refuse it, or take it), then ``next_step`` until the answer:
``Serve`` on a local node, whose answer ``is_final`` or is retried elsewhere (``next_step``
again, with that node tried); ``Forward`` to a mesh neighbour when no local node serves the
workload; ``Refuse`` when neither can.
"""

import random
from collections.abc import Sequence
from typing import NamedTuple

from offchain.protocol.wire import Request, Response
from offchain.routers import mesh as meshlib
from offchain.routers import table as tablelib

# Errors after which the request is tried once more on another node.
RETRYABLE = frozenset({"busy", "unknown-workload", "node-failed", "timeout"})
# Local nodes a request is tried on at most (the first and one retry).
MAX_ATTEMPTS = 2
# A caller or compute node holds at most this share of the router's in-flight requests; a mesh
# neighbour forwards for many callers, so it may hold them all.
CALLER_SHARE = 4


# The decisions are named tuples rather than frozen dataclasses: one is made per request on the
# relay's hot path, and a tuple costs a fraction of a frozen dataclass's ``__init__``.
class Serve(NamedTuple):
    """Send the request to the local compute node ``node``."""

    node: str


class Forward(NamedTuple):
    """Send the request on to the mesh neighbour ``next_hop``, the first router of its route."""

    next_hop: str


class Refuse(NamedTuple):
    """Answer the request with the error ``error``, explained by ``message``."""

    error: str
    message: str


Step = Serve | Forward | Refuse


def peer_limit(max_in_flight: int, is_neighbour: bool) -> int:
    """Return how many of the router's in-flight requests one sender may hold."""
    if is_neighbour:
        return max_in_flight
    return max(1, max_in_flight // CALLER_SHARE)


def admit(
    request: Request,
    sender: str,
    me: str,
    in_flight: int,
    sender_in_flight: int,
    max_in_flight: int,
    sender_is_neighbour: bool,
) -> Refuse | None:
    """Return why the router refuses ``request`` from ``sender``, or None to take it.

    A forwarded request names its sender last on its path; one that already passed through
    this router is a loop. The router holds at most ``max_in_flight`` requests, and one sender
    its share of them (``peer_limit``), whatever sessions it opens, so a flood from one caller
    leaves room for the others.
    """
    path = request.path
    if path and path[-1] != sender:
        return Refuse("bad-path", "a forwarded request must name its sender last")
    if me in path:
        return Refuse("loop", "request already passed through this router")
    if in_flight >= max_in_flight or sender_in_flight >= peer_limit(
        max_in_flight, sender_is_neighbour
    ):
        return busy(in_flight)
    return None


def busy(in_flight: int) -> Refuse:
    """Return the refusal of a router holding all the requests it may."""
    return Refuse("busy", f"router at its limit of {in_flight} requests")


def next_step(
    table: tablelib.RoutingTable,
    mesh: meshlib.MeshState,
    request: Request,
    now: float,
    rng: random.Random,
    tried: Sequence[str],
    failures: Sequence[str] = (),
    barred: Sequence[str] = (),
) -> Step:
    """Return what to do next with ``request``, after the local nodes in ``tried`` failed.

    A local node first, a different one for the retry, at most ``MAX_ATTEMPTS`` in all; once a
    local node was tried the request stays here (its failures are the answer, ``failures``
    holding one ``node:reason`` each). Nodes in ``barred`` (which may not serve the request's
    socket) are never chosen and are not attempts. With no local node to take it, the mesh's
    next hop;
    else busy when local nodes serve the workload but are full, and no-node when none does.
    """
    workload = request.workload
    if len(tried) < MAX_ATTEMPTS:
        exclude = [*tried, *barred] if barred else tried
        node = tablelib.choose(table, workload, rng, now, request.timeout_ms, exclude=exclude)
        if node is not None:
            return Serve(node)
    if tried:
        detail = ", ".join(failures)
        return Refuse("node-failed", f"{workload} failed on {len(tried)} node(s): {detail}")
    route = meshlib.next_hop(mesh, workload, now, request.path)
    if route is not None:
        return Forward(route.next_hop)
    if tablelib.serves(table, workload):
        return Refuse("busy", f"every node serving {workload} is full")
    return Refuse("no-node", f"no reachable node serves {workload}")


def is_final(response: Response) -> bool:
    """Return whether a node's ``response`` is the answer (else the request is tried elsewhere)."""
    return response.ok or response.error not in RETRYABLE


def failure(node: str, reason: str) -> str:
    """Return how a failed attempt on ``node`` reads in a node-failed refusal."""
    return f"{node[-8:]}:{reason}"


def timeout_s(request: Request, request_timeout_s: float) -> float:
    """Return how long the router waits for ``request``'s answer: its own limit, capped."""
    return min(request_timeout_s, max(request.timeout_ms, 1) / 1_000)


def refusal(request: Request, refused: Refuse) -> Response:
    """Return the error answer to ``request`` that ``refused`` decides."""
    return Response(
        request_id=request.request_id, ok=False, error=refused.error, message=refused.message
    )
