"""ComputeSocket as an ERC-721: balances, owners, transfers, safe transfers, approvals, ERC-165."""

import ape
import pytest

from tests.contracts.helpers import single_event

ERC165_ID = "0x01ffc9a7"
ERC721_ID = "0x80ac58cd"
ERC721_METADATA_ID = "0x5b5e139f"
ERC721_ENUMERABLE_ID = "0x780e9d63"


def test_balance_and_owner__after_mints__count_per_holder(
    sockets, create_socket, user, compute_node
):
    first = create_socket(to=user)
    second = create_socket(to=user)
    third = create_socket()
    assert sockets.balanceOf(user) == 2
    assert sockets.balanceOf(compute_node) == 1
    assert [sockets.ownerOf(t) for t in (first, second, third)] == [
        user.address,
        user.address,
        compute_node.address,
    ]
    assert sockets.name() == "EMC Compute Socket"
    assert sockets.symbol() == "EMCS"


def test_owner_of__unminted_token__reverts(sockets):
    with ape.reverts("erc721: invalid token ID"):
        sockets.ownerOf(99)


def test_transfer_from__holder__moves_token_and_emits(sockets, create_socket, user, stranger):
    token_id = create_socket(to=user)
    receipt = sockets.transferFrom(user, stranger, token_id, sender=user)
    log = single_event(receipt, sockets.Transfer)
    assert (log.sender, log.receiver, log.token_id) == (user.address, stranger.address, token_id)
    assert sockets.ownerOf(token_id) == stranger.address
    assert (sockets.balanceOf(user), sockets.balanceOf(stranger)) == (0, 1)


def test_transfer_from__not_holder_nor_approved__reverts(sockets, create_socket, user, stranger):
    token_id = create_socket(to=user)
    with ape.reverts("erc721: caller is not token owner or approved"):
        sockets.transferFrom(user, stranger, token_id, sender=stranger)


def test_safe_transfer_from__accepting_contract__receives(
    project, deployer, sockets, create_socket, user
):
    receiver = deployer.deploy(project.SocketReceiver, True)
    token_id = create_socket(to=user)
    sockets.safeTransferFrom(user, receiver, token_id, b"", sender=user)
    assert sockets.ownerOf(token_id) == receiver.address
    assert receiver.last_token_id() == token_id


def test_safe_transfer_from__refusing_contract__reverts(
    project, deployer, sockets, create_socket, user
):
    refuser = deployer.deploy(project.SocketReceiver, False)
    token_id = create_socket(to=user)
    with ape.reverts("erc721: transfer to non-IERC721Receiver implementer"):
        sockets.safeTransferFrom(user, refuser, token_id, b"", sender=user)
    assert sockets.ownerOf(token_id) == user.address


def test_safe_transfer_from__contract_without_hook__reverts(sockets, create_socket, user, token):
    token_id = create_socket(to=user)
    with ape.reverts():
        sockets.safeTransferFrom(user, token, token_id, b"", sender=user)
    assert sockets.ownerOf(token_id) == user.address


def test_approve__approved_account__may_transfer_once(
    sockets, create_socket, user, stranger, accounts
):
    token_id = create_socket(to=user)
    receipt = sockets.approve(stranger, token_id, sender=user)
    log = single_event(receipt, sockets.Approval)
    assert (log.owner, log.approved, log.token_id) == (user.address, stranger.address, token_id)
    assert sockets.getApproved(token_id) == stranger.address
    sockets.transferFrom(user, accounts[2], token_id, sender=stranger)
    assert sockets.ownerOf(token_id) == accounts[2].address
    assert sockets.getApproved(token_id) == ape.utils.ZERO_ADDRESS, "a transfer clears the approval"


def test_approve__not_holder__reverts(sockets, create_socket, user, stranger):
    token_id = create_socket(to=user)
    with ape.reverts("erc721: approve caller is not token owner or approved for all"):
        sockets.approve(stranger, token_id, sender=stranger)


def test_set_approval_for_all__operator__may_transfer_every_token(
    sockets, create_socket, user, stranger, accounts
):
    first, second = create_socket(to=user), create_socket(to=user)
    receipt = sockets.setApprovalForAll(stranger, True, sender=user)
    log = single_event(receipt, sockets.ApprovalForAll)
    assert (log.owner, log.operator, log.approved) == (user.address, stranger.address, True)
    assert sockets.isApprovedForAll(user, stranger) is True
    for token_id in (first, second):
        sockets.transferFrom(user, accounts[2], token_id, sender=stranger)
    assert sockets.balanceOf(accounts[2]) == 2


def test_set_approval_for_all__revoked__operator_reverts(sockets, create_socket, user, stranger):
    token_id = create_socket(to=user)
    sockets.setApprovalForAll(stranger, True, sender=user)
    sockets.setApprovalForAll(stranger, False, sender=user)
    with ape.reverts("erc721: caller is not token owner or approved"):
        sockets.transferFrom(user, stranger, token_id, sender=stranger)


@pytest.mark.parametrize(
    "interface_id", [ERC165_ID, ERC721_ID, ERC721_METADATA_ID, ERC721_ENUMERABLE_ID]
)
def test_supports_interface__implemented__true(sockets, interface_id):
    assert sockets.supportsInterface(interface_id) is True


@pytest.mark.parametrize("interface_id", ["0xffffffff", "0x36372b07", "0x00000000"])
def test_supports_interface__not_implemented__false(sockets, interface_id):
    assert sockets.supportsInterface(interface_id) is False


def test_enumeration__after_transfer__lists_by_holder(sockets, create_socket, user, stranger):
    first, second = create_socket(to=user), create_socket(to=user)
    sockets.transferFrom(user, stranger, first, sender=user)
    assert sockets.totalSupply() == 2
    assert {sockets.tokenByIndex(0), sockets.tokenByIndex(1)} == {first, second}
    assert sockets.tokenOfOwnerByIndex(user, 0) == second
    assert sockets.tokenOfOwnerByIndex(stranger, 0) == first
