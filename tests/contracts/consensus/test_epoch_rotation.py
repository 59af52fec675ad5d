"""Epoch rotation: set changes take effect at the boundary, committed by the previous set."""

import ape
import pytest

from tests.contracts.consensus.system import EMC, add_validator, deploy_system, make_commit, submit
from tests.contracts.helpers import single_event


@pytest.fixture(scope="module")
def rotating_system(project, chain, accounts):
    deployer = accounts[0]
    system = deploy_system(project, chain, deployer, epoch_length=2)
    for i in range(4):
        add_validator(system, deployer, accounts[10 + i], 10_000 * EMC, f"rot{i}".encode())
    system.consensus.bootstrap(sender=deployer)
    return system


def test_rotation__new_validator_waits_for_boundary_then_signs(rotating_system, accounts):
    system, deployer = rotating_system, accounts[0]
    submit(system, make_commit(1), [0, 1, 2], accounts[1])
    # A fifth validator joins mid-epoch: epoch 0's set is unchanged.
    add_validator(system, deployer, accounts[14], 10_000 * EMC, b"rot4")
    assert system.consensus.epoch_header(0)[2] == 4
    # The old set commits the boundary height, which installs the new set.
    receipt = submit(system, make_commit(2), [0, 1, 2], accounts[1])
    installed = single_event(receipt, system.consensus.ValidatorSetInstalled)
    assert (installed.epoch, installed.members, installed.total_power) == (1, 5, 50_000 * EMC)
    assert system.consensus.current_epoch() == 1
    assert system.consensus.epoch_member(1, 4) == (10_000 * EMC, accounts[14].address)
    # Epoch 1 needs 4 of 5: the old quorum of three no longer commits.
    with ape.reverts("consensus: quorum not met"):
        submit(system, make_commit(3), [0, 1, 2], accounts[1])
    receipt = submit(system, make_commit(3), [0, 1, 2, 4], accounts[1])
    assert single_event(receipt, system.consensus.StateCommitted).epoch == 1


def test_rotation__departed_validator_cannot_sign_next_epoch(rotating_system, accounts):
    system = rotating_system
    leaving = system.validators[3][0]
    system.staking.request_unstake(10_000 * EMC, sender=leaving)
    submit(system, make_commit(1), [0, 1, 3], accounts[1])
    submit(system, make_commit(2), [0, 1, 3], accounts[1])
    assert system.consensus.epoch_header(1)[2] == 3
    # In epoch 1 the departed validator is no member: index 3 is beyond the set.
    with ape.reverts("consensus: bitmap beyond the set"):
        submit(system, make_commit(3), [0, 1, 3], accounts[1])
    submit(system, make_commit(3), [0, 1, 2], accounts[1])


def test_rotation__raised_minimum_stake_leaves_no_active_validator__set_carries_over(
    rotating_system, accounts
):
    """A raised min_stake used to halt the chain at the next boundary."""
    system, deployer = rotating_system, accounts[0]
    system.staking.set_min_stake(1, 20_000 * EMC, sender=deployer)
    submit(system, make_commit(1), [0, 1, 2], accounts[1])
    receipt = submit(system, make_commit(2), [0, 1, 2], accounts[1])
    assert list(system.consensus.ValidatorSetInstalled.from_receipt(receipt)) == []
    assert system.consensus.current_epoch() == 1
    assert system.consensus.validator_set(1) == system.consensus.validator_set(0)
    submit(system, make_commit(3), [0, 1, 2], accounts[1])
    assert system.consensus.last_height() == 3


def test_install_set__outsider_snapshots_a_set_mid_epoch__reverts(rotating_system, accounts):
    # The snapshot runs in its own call frame (so commit's memory stays small), which makes it
    # an external function: only the boundary commit, through this contract itself, may call it.
    system = rotating_system
    epoch = system.consensus.current_epoch()
    installed = system.consensus.validator_set(epoch)
    with ape.reverts("consensus: caller is not consensus"):
        system.consensus.install_set(epoch, sender=accounts[2])
    with ape.reverts("consensus: caller is not consensus"):
        system.consensus.install_set(epoch + 1, sender=accounts[2])
    assert system.consensus.validator_set(epoch) == installed
    assert system.consensus.current_epoch() == epoch
