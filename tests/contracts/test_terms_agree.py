"""The serving and payment rule has one definition on each side, and the two sides agree.

Contracts: ComputeSocket's ``serving_terms`` and ``can_serve``, GPUComputeReward's shares and
``split_price``. Python: ``offchain/protocol/invocation`` (``constants``, ``rules`` and the checks
routers and validators run, ``check_socket`` and ``check_node``).
"""

import pytest

from offchain.protocol.invocation import (
    InvocationRecord,
    InvocationRequest,
    NodeInfo,
    Receipt,
    SocketInfo,
    check_node,
    check_socket,
    price_split,
    split_price,
)
from offchain.protocol.invocation.constants import ISSUER_SHARE_BPS, ROUTER_SHARE_BPS, TOTAL_BPS
from offchain.protocol.invocation.invocation_errors import InvocationRejected
from offchain.protocol.roles import ROLE_COMPUTE
from tests.contracts.helpers import MIN_COMPUTE_STAKE

ZERO = "0x" + "00" * 20
TERMS = [None, (True, True), (True, False)]  # issuer-only (the default), open-staked, open-any
PRICES = [0, 1, 9, 10, 999, 1_000, 1_009, 10**15 + 7, 3 * 10**18 + 1, 2**255 + 12_345, 2**256 - 1]


@pytest.fixture(scope="session")
def reward(project, deployer, token):
    return deployer.deploy(project.GPUComputeReward, token, 0)


class ApeView:
    """The checks' ``ChainView`` of the deployed ComputeSocket and Staking, read live."""

    def __init__(self, sockets, staking) -> None:
        self.sockets, self.staking = sockets, staking

    def socket(self, socket_id: int) -> SocketInfo | None:
        record = self.sockets.sockets(socket_id)
        if record.node == ZERO:
            return None
        terms = self.sockets.serving_terms(socket_id)
        return SocketInfo(
            holder=self.sockets.ownerOf(socket_id),
            workload=record.workload,
            price=record.price,
            issuer=record.node,
            expiry=record.expiry,
            open_serving=terms.open_serving,
            stake_required=terms.stake_required,
        )

    def node(self, address: str) -> NodeInfo | None:
        entry = self.staking.nodes(address)
        staked = self.staking.is_active(address, ROLE_COMPUTE)
        if not (entry.workloads or entry.gpu_model or entry.blacklisted or staked):
            return None
        return NodeInfo(staked, entry.blacklisted, frozenset(entry.workloads))


def offchain_verdict(view: ApeView, socket_id: int, worker: str, now: int) -> bool:
    """Return whether the checks routers and validators run let ``worker`` serve the socket."""
    socket = view.socket(socket_id)
    if socket is None:
        return False
    request = InvocationRequest(
        socket.holder, socket_id, socket.workload, b"\0" * 32, socket.price, 1, now + 60
    )
    receipt = Receipt(b"\0" * 32, b"\0" * 32, 1, socket.price, worker, ZERO)
    try:
        check_socket(request, view, now)
        check_node(InvocationRecord(request, b"", receipt, b"", b""), view)
    except InvocationRejected:
        return False
    return True


# ----------------------------------------------------------------------------------------------
# The price split
# ----------------------------------------------------------------------------------------------


def test_reward_contract__shares__equal_the_python_constants(reward):
    assert reward.BPS() == TOTAL_BPS
    assert reward.DEFAULT_ROUTER_SHARE_BPS() == ROUTER_SHARE_BPS
    assert reward.router_share_bps() == ROUTER_SHARE_BPS
    assert reward.ISSUER_SHARE_BPS() == ISSUER_SHARE_BPS


@pytest.mark.parametrize("issuer_served", [True, False])
def test_split_price__contract_and_python__same_parts(reward, issuer_served):
    for price in PRICES:
        split = price_split(price, issuer_served)
        assert reward.split_price(price, issuer_served) == (split.node, split.router, split.issuer)
        assert split.node + split.router + split.issuer == price


def test_split_price__governed_router_share__python_given_it_agrees(reward, deployer):
    for bps in (0, 2_500, TOTAL_BPS - ISSUER_SHARE_BPS):
        reward.set_router_share_bps(bps, sender=deployer)
        for price in PRICES:
            for issuer_served in (True, False):
                split = price_split(price, issuer_served, bps)
                assert reward.split_price(price, issuer_served) == (
                    split.node,
                    split.router,
                    split.issuer,
                )


def test_split_price__of_a_socket__issuer_part_only_when_another_node_served(
    reward, sockets, create_socket, serving_nodes, user
):
    view = ApeView(sockets, None)
    socket = view.socket(create_socket(to=user, price=1_009, terms=(True, True)))
    by_issuer = split_price(socket.price, socket, serving_nodes["issuer"].address)
    by_other = split_price(socket.price, socket, serving_nodes["staked"].address)
    assert reward.split_price(1_009, True) == (by_issuer.node, by_issuer.router, 0) == (909, 100, 0)
    assert reward.split_price(1_009, False) == (by_other.node, by_other.router, by_other.issuer)
    assert (by_other.node, by_other.router, by_other.issuer) == (809, 100, 100)


# ----------------------------------------------------------------------------------------------
# Who may serve
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("terms", TERMS, ids=["issuer-only", "open-staked", "open-any"])
def test_can_serve__contract_and_checks__same_verdict_for_every_node(
    sockets, staking, create_socket, serving_nodes, chain, user, terms
):
    view = ApeView(sockets, staking)
    token_id = create_socket(to=user, terms=terms)
    expiring = create_socket(to=user, terms=terms, expiry=chain.pending_timestamp + 50)

    def agree(socket_ids):
        now = chain.blocks.head.timestamp
        verdicts = {}
        for socket_id in socket_ids:
            for name, node in serving_nodes.items():
                on_chain = sockets.can_serve(socket_id, node)
                assert on_chain is offchain_verdict(view, socket_id, node.address, now), name
                verdicts[(socket_id, name)] = on_chain
        return verdicts

    verdicts = agree([token_id, expiring, token_id + 100])
    assert verdicts[(token_id, "issuer")] is True
    assert verdicts[(token_id, "staked")] is (terms is not None)
    assert verdicts[(token_id, "unstaked")] is (terms == (True, False))
    chain.pending_timestamp += 100  # the second socket expires
    chain.mine()
    assert not any(agree([expiring]).values())
    staking.request_unstake(MIN_COMPUTE_STAKE, sender=serving_nodes["issuer"])
    assert not any(agree([token_id]).values()), "an inactive issuer's socket serves no one"
