"""GPUComputeReward funded by ComputeMarket.settle: billed totals back the next rewards root."""

from offchain.protocol.billing import build_billing_tree
from offchain.protocol.rewards import split_invocation
from tests.contracts.rewards.helpers import EMC, proof_of, tree_of


def test_settle_then_update_root__earners_claim_the_billed_total(
    market, wired_gpu_reward, token, deployer, root_poster, user, router_owner, node_owner
):
    market.set_consensus(root_poster, sender=deployer)
    market.set_reward_contract(wired_gpu_reward, sender=deployer)
    token.transfer(user, 50 * EMC, sender=deployer)
    token.approve(market, 50 * EMC, sender=user)
    market.deposit(50 * EMC, sender=user)

    # One batch: 20 invocations at 1 EMC each, routed by router_owner, served by node_owner.
    router_cut, node_cut = split_invocation(EMC, wired_gpu_reward.router_share_bps())
    billed = 20 * EMC
    billing_root = build_billing_tree({user.address: billed})[0].root
    tree = tree_of({router_owner: 20 * router_cut, node_owner: 20 * node_cut})
    assert tree.total == billed

    # The root is refused before the billed total has arrived.
    wired_gpu_reward.update_root(tree.root, tree.total, sender=root_poster)
    assert wired_gpu_reward.root_count() == 0
    market.settle(billed, billing_root, sender=root_poster)
    wired_gpu_reward.update_root(tree.root, tree.total, sender=root_poster)

    wired_gpu_reward.claim_many(
        [router_owner, node_owner],
        [20 * router_cut, 20 * node_cut],
        [proof_of(tree, router_owner), proof_of(tree, node_owner)],
        sender=router_owner,
    )
    assert token.balanceOf(router_owner) == 2 * EMC
    assert token.balanceOf(node_owner) == 18 * EMC
    assert token.balanceOf(wired_gpu_reward) == 0
