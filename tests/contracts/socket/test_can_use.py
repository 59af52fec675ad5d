"""ComputeSocket.can_use: the holder or a delegate, before expiry, while its node is active."""

import ape
from ape.utils import ZERO_ADDRESS

from tests.contracts.helpers import MIN_COMPUTE_STAKE, single_event


def test_can_use__holder__true(sockets, create_socket, user):
    assert sockets.can_use(create_socket(to=user), user) is True


def test_can_use__stranger__false(sockets, create_socket, user, stranger):
    assert sockets.can_use(create_socket(to=user), stranger) is False


def test_can_use__user_agent__true_until_expiry_or_transfer(
    sockets, create_socket, chain, user, stranger, accounts
):
    agent = accounts[2]
    token_id = create_socket(to=user)
    until = chain.pending_timestamp + 1_000
    receipt = sockets.setUser(token_id, agent, until, sender=user)
    log = single_event(receipt, sockets.UpdateUser)
    assert (log.tokenId, log.user, log.expires) == (token_id, agent.address, until)
    assert sockets.can_use(token_id, agent) is True
    assert (sockets.userOf(token_id), sockets.userExpires(token_id)) == (agent.address, until)
    sockets.transferFrom(user, stranger, token_id, sender=user)
    assert sockets.can_use(token_id, agent) is False, "a transfer ends the delegation"
    assert sockets.userOf(token_id) == ZERO_ADDRESS
    assert sockets.can_use(token_id, user) is False, "the old holder loses use"
    assert sockets.can_use(token_id, stranger) is True
    sockets.setUser(token_id, agent, until, sender=stranger)
    chain.pending_timestamp = until
    chain.mine()
    assert sockets.can_use(token_id, agent) is False, "the use expired"
    assert sockets.userOf(token_id) == ZERO_ADDRESS


def test_set_user__agent_given_use__cannot_transfer_or_burn(
    sockets, create_socket, chain, user, accounts
):
    """Delegating use by approval used to hand the agent the socket itself."""
    agent = accounts[2]
    token_id = create_socket(to=user)
    sockets.setUser(token_id, agent, chain.pending_timestamp + 1_000, sender=user)
    with ape.reverts("erc721: caller is not token owner or approved"):
        sockets.transferFrom(user, agent, token_id, sender=agent)
    with ape.reverts("socket: caller is not holder or approved"):
        sockets.burn(token_id, sender=agent)
    with ape.reverts("socket: caller is not holder or approved"):
        sockets.setUser(token_id, agent, 2**63, sender=agent)


def test_can_use__approved_or_operator_only__false(sockets, create_socket, user, accounts):
    """Approval moves a socket; it no longer grants use."""
    token_id = create_socket(to=user)
    sockets.approve(accounts[2], token_id, sender=user)
    sockets.setApprovalForAll(accounts[3], True, sender=user)
    assert sockets.can_use(token_id, accounts[2]) is False
    assert sockets.can_use(token_id, accounts[3]) is False


def test_permit__signed_by_an_earlier_holding__dead_after_a_round_trip(
    sockets, create_socket, chain, user, stranger, accounts
):
    """A permit signed before the socket left used to revive when it came back."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    spender = accounts[2]
    token_id = create_socket(to=user)
    deadline = chain.pending_timestamp + 3_600
    signed = Account.sign_message(
        encode_typed_data(
            {"name": "EMC Compute Socket", "version": "1", "chainId": chain.chain_id,
             "verifyingContract": sockets.address},
            {"Permit": [{"name": "spender", "type": "address"},
                        {"name": "tokenId", "type": "uint256"},
                        {"name": "nonce", "type": "uint256"},
                        {"name": "deadline", "type": "uint256"}]},
            {"spender": spender.address, "tokenId": token_id, "nonce": 0, "deadline": deadline},
        ),
        user.private_key,
    )  # fmt: skip
    sockets.transferFrom(user, stranger, token_id, sender=user)
    sockets.transferFrom(stranger, user, token_id, sender=stranger)
    assert sockets.nonces(token_id) == 2
    with ape.reverts("erc721: invalid signature"):
        sockets.permit(spender, token_id, deadline, signed.v, signed.r, signed.s, sender=spender)


def test_supports_interface__erc4907__true(sockets):
    assert sockets.supportsInterface(bytes.fromhex("ad092b5c")) is True


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
