"""The route planner: admission, local choice, the retry, the mesh, and refusals, as data."""

import random

from hypothesis import given
from hypothesis import strategies as st

from offchain.protocol.wire import Request, Response, Summary
from offchain.routers import planner
from offchain.routers.mesh import MeshState, accept_summary, set_link
from offchain.routers.planner import Forward, Refuse, Serve
from offchain.routers.table import NodeEntry, RoutingTable, add_node, start_task

ME = "router-me"
NOW = 100.0


def request(workload: str = "echo", path: tuple[str, ...] = (), timeout_ms: int = 1_000) -> Request:
    return Request(b"\x01" * 16, workload, b"", path, timeout_ms)


def table(*nodes: tuple[str, str], capacity: int = 1) -> RoutingTable:
    """A table of staked nodes, each ``(peer id, workload)``."""
    result = RoutingTable()
    for peer, workload in nodes:
        result = add_node(result, NodeEntry(peer, frozenset({workload}), 1, capacity, True))
    return result


def mesh_serving(workload: str, via: str = "router-b") -> MeshState:
    """Our mesh view: one neighbour, linked, advertising ``workload``."""
    state = set_link(MeshState(ME), via, 1.0)
    summary = Summary(via, 1, {ME: 1_000}, {workload: 5_000})
    return accept_summary(state, summary, NOW)


def step(
    nodes: RoutingTable,
    req: Request,
    tried: list[str] | None = None,
    mesh: MeshState | None = None,
    failures: list[str] | None = None,
) -> planner.Step:
    return planner.next_step(
        nodes, mesh or MeshState(ME), req, NOW, random.Random(1), tried or [], failures or []
    )


# ---------------------------------------------------------------- admission


def admit(
    req: Request,
    sender: str = "caller",
    in_flight: int = 0,
    sender_in_flight: int = 0,
    max_in_flight: int = 8,
    neighbour: bool = False,
) -> Refuse | None:
    return planner.admit(req, sender, ME, in_flight, sender_in_flight, max_in_flight, neighbour)


def test_admit__room_and_a_clean_path__taken():
    assert admit(request()) is None
    assert admit(request(path=("router-b",)), sender="router-b", neighbour=True) is None


def test_admit__forwarded_without_its_sender_last__bad_path():
    refused = admit(request(path=("router-b",)), sender="router-c")
    assert refused is not None and refused.error == "bad-path"


def test_admit__path_through_this_router__loop():
    refused = admit(request(path=(ME, "router-b")), sender="router-b", neighbour=True)
    assert refused is not None and refused.error == "loop"


def test_admit__router_full__busy_naming_its_load():
    refused = admit(request(), in_flight=8)
    assert refused == Refuse("busy", "router at its limit of 8 requests")


def test_admit__caller_at_its_share__busy_while_a_neighbour_may_hold_all():
    assert admit(request(), sender_in_flight=2, max_in_flight=8) == planner.busy(0)
    assert admit(request(), sender_in_flight=1, max_in_flight=8) is None
    path = ("router-b",)
    assert admit(request(path=path), "router-b", 0, 7, 8, neighbour=True) is None
    assert admit(request(path=path), "router-b", 0, 8, 8, neighbour=True) == planner.busy(0)


def test_peer_limit__tiny_router__one_request_per_caller():
    assert planner.peer_limit(1, False) == 1
    assert planner.peer_limit(3, False) == 1
    assert planner.peer_limit(2_048, False) == 512
    assert planner.peer_limit(2_048, True) == 2_048


@given(
    in_flight=st.integers(0, 64),
    held=st.integers(0, 64),
    max_in_flight=st.integers(1, 64),
    neighbour=st.booleans(),
)
def test_admit__taken_only_under_both_limits(in_flight, held, max_in_flight, neighbour):
    refused = admit(request(), "caller", in_flight, held, max_in_flight, neighbour)
    under = in_flight < max_in_flight and held < planner.peer_limit(max_in_flight, neighbour)
    assert (refused is None) == under
    if refused is not None:
        assert refused.error == "busy"


# ---------------------------------------------------------------- local nodes


def test_next_step__a_local_node_serves__serve_there():
    assert step(table(("n1", "echo")), request()) == Serve("n1")


def test_next_step__first_node_failed__retry_on_another():
    nodes = table(("n1", "echo"), ("n2", "echo"))
    first = step(nodes, request())
    assert isinstance(first, Serve)
    other = ({"n1", "n2"} - {first.node}).pop()
    assert step(nodes, request(), tried=[first.node]) == Serve(other)


def test_next_step__only_node_failed__node_failed_with_its_reason_not_the_mesh():
    refused = step(
        table(("node-0001", "echo")),
        request(),
        tried=["node-0001"],
        mesh=mesh_serving("echo"),
        failures=[planner.failure("node-0001", "timeout")],
    )
    assert refused == Refuse("node-failed", "echo failed on 1 node(s): ode-0001:timeout")


def test_next_step__two_attempts_failed__no_third_even_with_nodes_left():
    nodes = table(("n1", "echo"), ("n2", "echo"), ("n3", "echo"))
    refused = step(nodes, request(), tried=["n1", "n2"], failures=["n1:busy", "n2:gone"])
    assert refused == Refuse("node-failed", "echo failed on 2 node(s): n1:busy, n2:gone")


def test_next_step__local_nodes_full__busy():
    nodes = start_task(table(("n1", "echo")), "n1", NOW)
    assert step(nodes, request()) == Refuse("busy", "every node serving echo is full")


def test_next_step__nobody_serves__no_node():
    assert step(table(("n1", "other")), request()) == Refuse(
        "no-node", "no reachable node serves echo"
    )


# ---------------------------------------------------------------- the mesh


def test_next_step__no_local_node__forward_along_the_mesh():
    assert step(RoutingTable(), request(), mesh=mesh_serving("echo")) == Forward("router-b")


def test_next_step__local_nodes_full__forward_before_busy():
    nodes = start_task(table(("n1", "echo")), "n1", NOW)
    assert step(nodes, request(), mesh=mesh_serving("echo")) == Forward("router-b")


def test_next_step__only_route_already_on_the_path__no_node():
    req = request(path=("router-b",))
    assert step(RoutingTable(), req, mesh=mesh_serving("echo")) == Refuse(
        "no-node", "no reachable node serves echo"
    )


@given(
    nodes=st.lists(st.sampled_from(["n1", "n2", "n3", "n4"]), unique=True),
    tried_count=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_next_step__never_a_tried_node_nor_more_than_two(nodes, tried_count, seed):
    routing = table(*((peer, "echo") for peer in nodes))
    tried = nodes[:tried_count]
    decided = planner.next_step(
        routing, MeshState(ME), request(), NOW, random.Random(seed), tried, []
    )
    if isinstance(decided, Serve):
        assert decided.node in nodes and decided.node not in tried
        assert len(tried) < planner.MAX_ATTEMPTS
    else:
        assert decided.error == ("node-failed" if tried else "no-node")


# ---------------------------------------------------------------- answers


def test_is_final__ok_and_permanent_errors__retryable_ones_not():
    rid = b"\x01" * 16
    assert planner.is_final(Response(request_id=rid, ok=True))
    assert planner.is_final(Response(request_id=rid, ok=False, error="bad-input"))
    for error in planner.RETRYABLE:
        assert not planner.is_final(Response(request_id=rid, ok=False, error=error))


def test_timeout_s__the_request_limit_capped_by_the_router():
    assert planner.timeout_s(request(timeout_ms=1_500), 30.0) == 1.5
    assert planner.timeout_s(request(timeout_ms=90_000), 30.0) == 30.0
    assert planner.timeout_s(request(timeout_ms=0), 30.0) == 0.001


def test_refusal__the_error_answer_to_the_request():
    req = request()
    answer = planner.refusal(req, Refuse("no-node", "none"))
    assert answer == Response(request_id=req.request_id, ok=False, error="no-node", message="none")
