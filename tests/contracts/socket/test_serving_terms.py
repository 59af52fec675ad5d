"""ComputeSocket's serving terms: set at mint, read by `serving_terms`, applied by `can_serve`.

Three terms: issuer-only (the default), open to staked nodes, open to any node that declares the
workload. Each of the ``serving_nodes`` stands for one case of the rule.
"""

import ape
import pytest

from tests.contracts.helpers import MIN_COMPUTE_STAKE, single_event

ISSUER_ONLY, OPEN_STAKED, OPEN_ANY = None, (True, True), (True, False)
TERMS = {"issuer-only": ISSUER_ONLY, "open-staked": OPEN_STAKED, "open-any": OPEN_ANY}

# Who may serve a socket under each terms (issuer-only, open-staked, open-any).
MAY_SERVE = {
    "issuer": (True, True, True),
    "staked": (False, True, True),
    "unstaked": (False, False, True),
    "undeclared": (False, False, False),
    "blacklisted": (False, False, False),
    "stranger": (False, False, False),
}


@pytest.mark.parametrize(
    "terms, expected",
    [(ISSUER_ONLY, (False, True)), ((False, True), (False, True)), (OPEN_STAKED, (True, True)),
     (OPEN_ANY, (True, False))],
    ids=["default", "issuer-only", "open-staked", "open-any"],
)  # fmt: skip
def test_mint__terms__stored_and_emitted(sockets, chain, compute_node, user, terms, expected):
    expiry = chain.pending_timestamp + 86_400
    args = [user, "matmul-f32", 50, 10**15, expiry, 1_000, "ipfs://socket"]
    receipt = sockets.mint(*args, *(terms or ()), sender=compute_node)
    log = single_event(receipt, sockets.SocketMinted)
    assert (log.open_serving, log.stake_required) == expected
    stored = sockets.serving_terms(log.token_id)
    assert (stored.open_serving, stored.stake_required) == expected


def test_mint__issuer_only_without_stake__reverts(sockets, chain, compute_node, user):
    """An issuer-only socket's only server, its issuer, is always staked: say so."""
    expiry = chain.pending_timestamp + 86_400
    with ape.reverts("socket: issuer-only needs stake"):
        sockets.mint(
            user, "matmul-f32", 50, 10**15, expiry, 1_000, "", False, False, sender=compute_node
        )


def test_serving_terms__no_socket__issuer_only(sockets):
    terms = sockets.serving_terms(7)
    assert (terms.open_serving, terms.stake_required) == (False, True)


@pytest.mark.parametrize("name", list(TERMS))
@pytest.mark.parametrize("who", list(MAY_SERVE))
def test_can_serve__each_node_under_each_terms(
    sockets, create_socket, serving_nodes, user, name, who
):
    token_id = create_socket(to=user, terms=TERMS[name])
    expected = MAY_SERVE[who][list(TERMS).index(name)]
    assert sockets.can_serve(token_id, serving_nodes[who]) is expected


@pytest.mark.parametrize("name", list(TERMS))
def test_can_serve__issuer_unstaked__no_node(
    sockets, create_socket, staking, serving_nodes, user, name
):
    token_id = create_socket(to=user, terms=TERMS[name])
    staking.request_unstake(MIN_COMPUTE_STAKE, sender=serving_nodes["issuer"])
    assert not any(sockets.can_serve(token_id, node) for node in serving_nodes.values())


def test_can_serve__expired_or_burned__no_node(sockets, create_socket, chain, serving_nodes, user):
    expiry = chain.pending_timestamp + 100
    expiring = create_socket(to=user, expiry=expiry, terms=OPEN_ANY)
    burned = create_socket(to=user, terms=OPEN_ANY)
    sockets.burn(burned, sender=user)
    terms = sockets.serving_terms(burned)
    assert (terms.open_serving, terms.stake_required) == (False, True), "burn clears the terms"
    chain.pending_timestamp = expiry
    chain.mine()
    for token_id in (expiring, burned):
        assert not any(sockets.can_serve(token_id, node) for node in serving_nodes.values())


def test_serving_terms__transfer__unchanged(sockets, create_socket, serving_nodes, user, stranger):
    token_id = create_socket(to=user, terms=OPEN_ANY)
    sockets.transferFrom(user, stranger, token_id, sender=user)
    terms = sockets.serving_terms(token_id)
    assert (terms.open_serving, terms.stake_required) == (True, False)
    assert sockets.can_serve(token_id, serving_nodes["unstaked"]) is True


def test_serving_terms__no_function_changes_them(sockets):
    """Terms are fixed at mint: the contract's state-changing functions are these and no more."""
    assert {method.name for method in sockets.contract_type.mutable_methods} == {
        "mint",
        "burn",
        "transferFrom",
        "safeTransferFrom",
        "approve",
        "setApprovalForAll",
        "permit",
        "setUser",
    }
