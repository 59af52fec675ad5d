"""The nodes a router passes over for a socket, before it sends the order: those its terms bar.

``RouterAgent._barred`` reads only the routing table and the chain view, so it is called here on
a stand-in agent with a table of three linked nodes that serve the socket's workload.
"""

from types import SimpleNamespace

import pytest

from offchain.protocol.invocation import InvocationRequest, MemoryChainView, SocketInfo
from offchain.routers import table as tablelib
from offchain.routers.admission import Ticket
from offchain.routers.agent import RouterAgent

WORKLOAD = "echo"
ISSUER, STAKED, UNSTAKED = ("0x" + digit * 40 for digit in "123")
LINKS = {
    "issuer-peer": (ISSUER, True),
    "staked-peer": (STAKED, True),
    "bare-peer": (UNSTAKED, False),
}


def barred(open_serving: bool, stake_required: bool) -> set[str]:
    table = tablelib.RoutingTable()
    for peer, (address, staked) in LINKS.items():
        entry = tablelib.NodeEntry(peer, frozenset({WORKLOAD}), 1, 1, staked, address=address)
        table = tablelib.add_node(table, entry)
    socket = SocketInfo(
        holder=ISSUER, workload=WORKLOAD, price=1, issuer=ISSUER, expiry=2**40,
        open_serving=open_serving, stake_required=stake_required,
    )  # fmt: skip
    checks = SimpleNamespace(view=MemoryChainView(sockets={1: socket}))
    order = InvocationRequest(ISSUER, 1, WORKLOAD, b"\0" * 32, 1, 1, 2**40)
    agent = SimpleNamespace(node_links=SimpleNamespace(table=table))
    return set(RouterAgent._barred(agent, checks, Ticket(order, b"", b"", 1)))


@pytest.mark.parametrize(
    "terms, expected",
    [((False, True), {"staked-peer", "bare-peer"}), ((True, True), {"bare-peer"}),
     ((True, False), set())],
    ids=["issuer-only", "open-staked", "open-any"],
)  # fmt: skip
def test_barred__each_terms__the_nodes_they_do_not_admit(terms, expected):
    assert barred(*terms) == expected
