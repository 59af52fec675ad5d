"""ComputeSocket.mint: only active staked compute nodes, for workloads they declared."""

import ape

from tests.contracts.helpers import MIN_COMPUTE_STAKE, MIN_ROUTER_STAKE, ROLE_ROUTER, single_event

DAY = 24 * 3600


def mint_args(chain, to, **overrides):
    args = {
        "workload": "matmul-f32",
        "capacity": 50,
        "price": 10**15,
        "expiry": chain.pending_timestamp + 30 * DAY,
        "invocations_per_epoch": 1_000,
        "uri": "ipfs://socket",
    }
    args.update(overrides)
    return [
        to,
        args["workload"],
        args["capacity"],
        args["price"],
        args["expiry"],
        args["invocations_per_epoch"],
        args["uri"],
    ]


def test_mint__active_compute_node__records_socket_and_emits(sockets, chain, compute_node, user):
    args = mint_args(
        chain, user, workload="mlp-infer", capacity=75, price=3 * 10**15, invocations_per_epoch=500
    )
    receipt = sockets.mint(*args, sender=compute_node)
    log = single_event(receipt, sockets.SocketMinted)
    assert (log.token_id, log.node, log.owner) == (1, compute_node.address, user.address)
    assert (log.workload, log.capacity, log.price) == ("mlp-infer", 75, 3 * 10**15)
    assert (log.expiry, log.invocations_per_epoch) == (args[4], 500)
    assert (log.open_serving, log.stake_required) == (False, True), "issuer-only by default"
    transfer = single_event(receipt, sockets.Transfer)
    assert (transfer.sender, transfer.receiver, transfer.token_id) == (
        ape.utils.ZERO_ADDRESS,
        user.address,
        1,
    )
    socket = sockets.sockets(1)
    assert (socket.workload, socket.capacity, socket.price, socket.node) == (
        "mlp-infer",
        75,
        3 * 10**15,
        compute_node.address,
    )
    assert (socket.expiry, socket.invocations_per_epoch) == (args[4], 500)
    assert sockets.ownerOf(1) == user.address
    assert sockets.tokenURI(1) == "ipfs://socket"
    assert sockets.next_token_id() == 2


def test_mint__twice__ids_increase(sockets, create_socket):
    assert create_socket() == 1
    assert create_socket() == 2
    assert sockets.totalSupply() == 2


def test_mint__unstaked_account__reverts(sockets, chain, staking, stranger):
    staking.declare_node("", 0, 0, ["matmul-f32"], sender=stranger)
    with ape.reverts("socket: not an active compute node"):
        sockets.mint(*mint_args(chain, stranger), sender=stranger)


def test_mint__router_without_compute_role__reverts(
    sockets, chain, staking, stake_as, router_owner
):
    stake_as(router_owner, ROLE_ROUTER, MIN_ROUTER_STAKE)
    staking.declare_node("", 0, 0, ["matmul-f32"], sender=router_owner)
    with ape.reverts("socket: not an active compute node"):
        sockets.mint(*mint_args(chain, router_owner), sender=router_owner)


def test_mint__blacklisted_node__reverts(sockets, chain, staking, deployer, compute_node):
    staking.set_blacklisted(compute_node, True, sender=deployer)
    with ape.reverts("socket: not an active compute node"):
        sockets.mint(*mint_args(chain, compute_node), sender=compute_node)


def test_mint__slashed_below_minimum__reverts(
    sockets, chain, staking, deployer, accounts, compute_node
):
    slasher = accounts[9]
    staking.set_slasher(slasher, sender=deployer)
    staking.slash(compute_node, 1, "test", sender=slasher)
    assert staking.staked(compute_node) == MIN_COMPUTE_STAKE - 1
    with ape.reverts("socket: not an active compute node"):
        sockets.mint(*mint_args(chain, compute_node), sender=compute_node)


def test_mint__unstaking_node__reverts(sockets, chain, staking, compute_node):
    staking.request_unstake(MIN_COMPUTE_STAKE, sender=compute_node)
    assert staking.roles(compute_node) == 0
    with ape.reverts("socket: not an active compute node"):
        sockets.mint(*mint_args(chain, compute_node), sender=compute_node)


def test_mint__workload_not_declared__reverts(sockets, chain, compute_node):
    with ape.reverts("socket: workload not declared"):
        sockets.mint(*mint_args(chain, compute_node, workload="nbody"), sender=compute_node)


def test_mint__empty_workload__reverts(sockets, chain, compute_node):
    with ape.reverts("socket: empty workload"):
        sockets.mint(*mint_args(chain, compute_node, workload=""), sender=compute_node)


def test_mint__zero_capacity__reverts(sockets, chain, compute_node):
    with ape.reverts("socket: zero capacity"):
        sockets.mint(*mint_args(chain, compute_node, capacity=0), sender=compute_node)


def test_mint__zero_invocations__reverts(sockets, chain, compute_node):
    with ape.reverts("socket: zero invocations"):
        sockets.mint(*mint_args(chain, compute_node, invocations_per_epoch=0), sender=compute_node)


def test_mint__expiry_in_past__reverts(sockets, chain, compute_node):
    with ape.reverts("socket: expiry in the past"):
        sockets.mint(
            *mint_args(chain, compute_node, expiry=chain.pending_timestamp - 1), sender=compute_node
        )


def test_mint__to_zero_address__reverts(sockets, chain, compute_node):
    with ape.reverts("erc721: mint to the zero address"):
        sockets.mint(*mint_args(chain, ape.utils.ZERO_ADDRESS), sender=compute_node)


def test_mint__to_refusing_contract__reverts(project, deployer, sockets, chain, compute_node):
    refuser = deployer.deploy(project.SocketReceiver, False)
    with ape.reverts("erc721: transfer to non-IERC721Receiver implementer"):
        sockets.mint(*mint_args(chain, refuser), sender=compute_node)


def test_mint__to_accepting_contract__holds_token(project, deployer, sockets, chain, compute_node):
    receiver = deployer.deploy(project.SocketReceiver, True)
    sockets.mint(*mint_args(chain, receiver), sender=compute_node)
    assert sockets.ownerOf(1) == receiver.address
    assert receiver.last_token_id() == 1


def test_mint__deployer_without_stake__reverts(sockets, chain, deployer):
    """The deployer gave up snekmate's minter role and ownership: it mints like anyone else."""
    with ape.reverts("socket: not an active compute node"):
        sockets.mint(*mint_args(chain, deployer), sender=deployer)
