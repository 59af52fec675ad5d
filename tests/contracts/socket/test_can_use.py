"""ComputeSocket.can_use: the holder or a delegate, before expiry, while its node is active."""

from tests.contracts.helpers import MIN_COMPUTE_STAKE


def test_can_use__holder__true(sockets, create_socket, user):
    assert sockets.can_use(create_socket(to=user), user) is True


def test_can_use__stranger__false(sockets, create_socket, user, stranger):
    assert sockets.can_use(create_socket(to=user), stranger) is False


def test_can_use__approved_agent__true_until_transfer(
    sockets, create_socket, user, stranger, accounts
):
    agent = accounts[2]
    token_id = create_socket(to=user)
    sockets.approve(agent, token_id, sender=user)
    assert sockets.can_use(token_id, agent) is True
    sockets.transferFrom(user, stranger, token_id, sender=user)
    assert sockets.can_use(token_id, agent) is False, "a transfer ends the delegation"
    assert sockets.can_use(token_id, user) is False, "the old holder loses use"
    assert sockets.can_use(token_id, stranger) is True


def test_can_use__operator_agent__true_until_revoked(sockets, create_socket, user, accounts):
    agent = accounts[2]
    token_id = create_socket(to=user)
    sockets.setApprovalForAll(agent, True, sender=user)
    assert sockets.can_use(token_id, agent) is True
    sockets.setApprovalForAll(agent, False, sender=user)
    assert sockets.can_use(token_id, agent) is False


def test_can_use__after_expiry__false(sockets, create_socket, chain, user):
    expiry = chain.pending_timestamp + 100
    token_id = create_socket(to=user, expiry=expiry)
    chain.pending_timestamp = expiry
    chain.mine()
    assert sockets.can_use(token_id, user) is False


def test_can_use__node_blacklisted__false(
    sockets, create_socket, staking, deployer, compute_node, user
):
    token_id = create_socket(to=user)
    staking.set_blacklisted(compute_node, True, sender=deployer)
    assert sockets.can_use(token_id, user) is False


def test_can_use__node_unstaked__false(sockets, create_socket, staking, compute_node, user):
    token_id = create_socket(to=user)
    staking.request_unstake(MIN_COMPUTE_STAKE, sender=compute_node)
    assert sockets.can_use(token_id, user) is False


def test_can_use__unminted__false(sockets, user):
    assert sockets.can_use(7, user) is False
