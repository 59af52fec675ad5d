"""Staking's node registry: self-declared fields, and consensus-only fields."""

import ape
import pytest

from tests.contracts.helpers import MIN_COMPUTE_STAKE, ROLE_COMPUTE, single_event


def test_declare_node__sets_own_fields_and_logs(staking, node_owner):
    receipt = staking.declare_node(
        "H100", 81_920, 2_000, ["matmul-f32", "mlp-infer"], sender=node_owner
    )
    node = staking.nodes(node_owner)
    assert (node.gpu_model, node.memory_mb, node.storage_gb) == ("H100", 81_920, 2_000)
    assert staking.node_workloads(node_owner) == ["matmul-f32", "mlp-infer"]
    log = single_event(receipt, staking.NodeDeclared)
    assert (log.node, log.gpu_model, log.memory_mb, log.storage_gb, list(log.workloads)) == (
        node_owner.address,
        "H100",
        81_920,
        2_000,
        ["matmul-f32", "mlp-infer"],
    )


def test_declare_node__does_not_touch_measured_fields(staking, deployer, node_owner):
    staking.set_node_measurements(node_owner, 42, 7, sender=deployer)
    staking.declare_node("", 1, 1, [], sender=node_owner)
    node = staking.nodes(node_owner)
    assert (node.e_power, node.reputation) == (42, 7)


def test_set_node_measurements__owner_before_wiring__writes(staking, deployer, node_owner):
    receipt = staking.set_node_measurements(node_owner, 1_500, 90, sender=deployer)
    node = staking.nodes(node_owner)
    assert (node.e_power, node.reputation) == (1_500, 90)
    log = single_event(receipt, staking.NodeMeasured)
    assert (log.node, log.e_power, log.reputation) == (node_owner.address, 1_500, 90)


def test_set_node_measurements__node_itself__reverts(staking, node_owner):
    with ape.reverts("ownable: caller is not the owner"):
        staking.set_node_measurements(node_owner, 10**9, 100, sender=node_owner)


@pytest.fixture
def wired_slasher(staking, deployer, stranger):
    staking.set_slasher(stranger, sender=deployer)
    return stranger


def test_set_node_measurements__after_wiring__only_consensus(
    staking, deployer, wired_slasher, node_owner
):
    with ape.reverts("staking: caller is not the consensus contract"):
        staking.set_node_measurements(node_owner, 1, 1, sender=deployer)
    staking.set_node_measurements(node_owner, 5, 5, sender=wired_slasher)
    assert staking.nodes(node_owner).e_power == 5


def test_set_blacklisted__deactivates_every_role(staking, stake_as, wired_slasher, node_owner):
    stake_as(node_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    receipt = staking.set_blacklisted(node_owner, True, sender=wired_slasher)
    assert not staking.is_active(node_owner, ROLE_COMPUTE)
    log = single_event(receipt, staking.NodeBlacklisted)
    assert (log.node, log.blacklisted) == (node_owner.address, True)
    staking.set_blacklisted(node_owner, False, sender=wired_slasher)
    assert staking.is_active(node_owner, ROLE_COMPUTE)


def test_set_blacklisted__stranger__reverts(staking, stranger, node_owner):
    with ape.reverts("ownable: caller is not the owner"):
        staking.set_blacklisted(node_owner, True, sender=stranger)
