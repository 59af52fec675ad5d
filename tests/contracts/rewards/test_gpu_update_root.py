"""GPUComputeReward.update_root: consensus installs a funded root and releases emission."""

import ape

from tests.contracts.helpers import single_event
from tests.contracts.rewards.helpers import EMC, EMISSION_PER_COMMIT, tree_of


def test_update_root__billed_funds__installs_root(wired_gpu_reward, post_root, earners):
    tree = tree_of({earners[0]: 5 * EMC, earners[1]: 2 * EMC})
    receipt = post_root(tree)
    assert bytes(wired_gpu_reward.rewards_root()) == tree.root
    assert wired_gpu_reward.rewards_total() == 7 * EMC
    assert wired_gpu_reward.root_count() == 1
    log = single_event(receipt, wired_gpu_reward.RootUpdated)
    assert (log.root_count, bytes(log.rewards_root), log.rewards_total) == (1, tree.root, 7 * EMC)
    assert (log.emission_released, log.emission_pool) == (0, 0)


def test_update_root__emission_pool__releases_per_commit_to_back_rewards(
    wired_gpu_reward, token, deployer, root_poster, earners
):
    token.approve(wired_gpu_reward, 25 * EMC, sender=deployer)
    wired_gpu_reward.fund_emission(25 * EMC, sender=deployer)
    # The first commit's emission backs a root worth exactly EMISSION_PER_COMMIT.
    tree = tree_of({earners[0]: EMISSION_PER_COMMIT})
    receipt = wired_gpu_reward.update_root(tree.root, tree.total, sender=root_poster)
    log = single_event(receipt, wired_gpu_reward.RootUpdated)
    assert (log.emission_released, log.emission_pool) == (EMISSION_PER_COMMIT, 15 * EMC)
    assert wired_gpu_reward.emission_pool() == 15 * EMC
    assert wired_gpu_reward.backing() == EMISSION_PER_COMMIT


def test_update_root__pool_below_rate__releases_the_rest(
    wired_gpu_reward, token, deployer, root_poster
):
    token.approve(wired_gpu_reward, 4 * EMC, sender=deployer)
    wired_gpu_reward.fund_emission(4 * EMC, sender=deployer)
    tree = tree_of({deployer: 4 * EMC})
    receipt = wired_gpu_reward.update_root(tree.root, tree.total, sender=root_poster)
    log = single_event(receipt, wired_gpu_reward.RootUpdated)
    assert (log.emission_released, log.emission_pool) == (4 * EMC, 0)
    receipt = wired_gpu_reward.update_root(tree.root, tree.total, sender=root_poster)
    log = single_event(receipt, wired_gpu_reward.RootUpdated)
    assert (log.root_count, log.emission_released, log.emission_pool) == (2, 0, 0)


def test_update_root__not_consensus__reverts(wired_gpu_reward, stranger):
    with ape.reverts("reward: caller is not consensus"):
        wired_gpu_reward.update_root(b"\x01" * 32, 0, sender=stranger)


def test_update_root__consensus_not_set__reverts(gpu_reward, root_poster):
    with ape.reverts("reward: caller is not consensus"):
        gpu_reward.update_root(b"\x01" * 32, 0, sender=root_poster)


def _refused(receipt, gpu_reward, tree, reason):
    log = single_event(receipt, gpu_reward.RootRefused)
    assert (bytes(log.rewards_root), log.rewards_total, log.reason) == (
        tree.root,
        tree.total,
        reason,
    )
    assert list(gpu_reward.RootUpdated.from_receipt(receipt)) == []


def test_update_root__total_decreased__refused_without_reverting(
    wired_gpu_reward, post_root, root_poster, earners
):
    first = tree_of({earners[0]: 5 * EMC})
    post_root(first)
    lower = tree_of({earners[0]: 5 * EMC - 1})
    receipt = wired_gpu_reward.update_root(lower.root, lower.total, sender=root_poster)
    _refused(receipt, wired_gpu_reward, lower, "total decreased")
    assert (bytes(wired_gpu_reward.rewards_root()), wired_gpu_reward.root_count()) == (
        first.root,
        1,
    )


def test_update_root__unfunded__refused_without_reverting(
    wired_gpu_reward, post_root, root_poster, earners
):
    tree = tree_of({earners[0]: 5 * EMC})
    receipt = wired_gpu_reward.update_root(tree.root, tree.total, sender=root_poster)
    _refused(receipt, wired_gpu_reward, tree, "root exceeds funding")
    # One wei short of the billed total is refused too.
    _refused(post_root(tree, billed=5 * EMC - 1), wired_gpu_reward, tree, "root exceeds funding")
    assert (wired_gpu_reward.rewards_total(), wired_gpu_reward.root_count()) == (0, 0)
    # Once funded, the same cumulative root is installed.
    post_root(tree, billed=1)
    assert wired_gpu_reward.rewards_total() == 5 * EMC


def test_update_root__emission_pool_not_yet_released__does_not_back_rewards(
    wired_gpu_reward, token, deployer, root_poster, earners
):
    wired_gpu_reward.set_emission_per_commit(0, sender=deployer)
    token.approve(wired_gpu_reward, 50 * EMC, sender=deployer)
    wired_gpu_reward.fund_emission(50 * EMC, sender=deployer)
    tree = tree_of({earners[0]: EMC})
    receipt = wired_gpu_reward.update_root(tree.root, tree.total, sender=root_poster)
    _refused(receipt, wired_gpu_reward, tree, "root exceeds funding")
    assert wired_gpu_reward.emission_pool() == 50 * EMC


def test_update_root__after_claims__only_unclaimed_must_be_backed(
    wired_gpu_reward, post_root, root_poster, earners
):
    alice = earners[0]
    first = tree_of({alice: 5 * EMC})
    post_root(first)
    wired_gpu_reward.claim(alice, 5 * EMC, first.proofs[str(alice)], sender=alice)
    second = tree_of({alice: 8 * EMC})
    post_root(second)  # bills only the 3 EMC new
    assert wired_gpu_reward.rewards_total() == 8 * EMC
    assert wired_gpu_reward.backing() == 3 * EMC
