"""ComputeSocket.burn: the holder (or an approved account) destroys a socket and its record."""

import ape

from tests.contracts.helpers import single_event


def test_burn__holder__destroys_token_and_record(sockets, create_socket, user):
    token_id = create_socket(to=user)
    receipt = sockets.burn(token_id, sender=user)
    log = single_event(receipt, sockets.SocketBurned)
    assert (log.token_id, log.owner) == (token_id, user.address)
    assert sockets.balanceOf(user) == 0
    assert sockets.totalSupply() == 0
    assert sockets.socket_node(token_id) == ape.utils.ZERO_ADDRESS
    assert sockets.can_use(token_id, user) is False
    with ape.reverts("erc721: invalid token ID"):
        sockets.ownerOf(token_id)


def test_burn__stranger__reverts(sockets, create_socket, user, stranger):
    token_id = create_socket(to=user)
    with ape.reverts("socket: caller is not holder or approved"):
        sockets.burn(token_id, sender=stranger)


def test_burn__approved__destroys(sockets, create_socket, user, stranger):
    token_id = create_socket(to=user)
    sockets.approve(stranger, token_id, sender=user)
    sockets.burn(token_id, sender=stranger)
    assert sockets.balanceOf(user) == 0
