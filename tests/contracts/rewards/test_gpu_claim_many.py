"""GPUComputeReward.claim_many: several claims in one call, each as `claim`."""

import ape

from tests.contracts.rewards.helpers import EMC, proof_of, tree_of


def test_claim_many__pays_several(wired_gpu_reward, post_root, token, earners, stranger):
    amounts = [4 * EMC, 3 * EMC, 2 * EMC, 1 * EMC]
    tree = tree_of(dict(zip(earners, amounts, strict=True)))
    post_root(tree)
    receipt = wired_gpu_reward.claim_many(
        earners, amounts, [proof_of(tree, a) for a in earners], sender=stranger
    )
    assert receipt.return_value == 10 * EMC
    for account, amount in zip(earners, amounts, strict=True):
        assert token.balanceOf(account) == amount
        assert wired_gpu_reward.claimed(account) == amount
    assert token.balanceOf(wired_gpu_reward) == 0
    logs = list(wired_gpu_reward.Claimed.from_receipt(receipt))
    assert [(log.account, log.caller, log.amount, log.cumulative) for log in logs] == [
        (a.address, stranger.address, amount, amount)
        for a, amount in zip(earners, amounts, strict=True)
    ]


def test_claim_many__one_already_claimed__pays_the_others(
    wired_gpu_reward, post_root, token, earners
):
    alice, bob = earners[:2]
    tree = tree_of({alice: 5 * EMC, bob: 6 * EMC})
    post_root(tree)
    wired_gpu_reward.claim(alice, 5 * EMC, proof_of(tree, alice), sender=alice)
    receipt = wired_gpu_reward.claim_many(
        [alice, bob], [5 * EMC, 6 * EMC], [proof_of(tree, alice), proof_of(tree, bob)], sender=bob
    )
    assert receipt.return_value == 6 * EMC
    assert (token.balanceOf(alice), token.balanceOf(bob)) == (5 * EMC, 6 * EMC)
    assert [log.account for log in wired_gpu_reward.Claimed.from_receipt(receipt)] == [bob.address]


def test_claim_many__one_bad_proof__reverts_all(wired_gpu_reward, post_root, token, earners):
    alice, bob = earners[:2]
    tree = tree_of({alice: 5 * EMC, bob: 6 * EMC})
    post_root(tree)
    with ape.reverts("reward: invalid proof"):
        wired_gpu_reward.claim_many(
            [alice, bob],
            [5 * EMC, 7 * EMC],
            [proof_of(tree, alice), proof_of(tree, bob)],
            sender=bob,
        )
    assert token.balanceOf(alice) == 0


def test_claim_many__length_mismatch__reverts(wired_gpu_reward, post_root, earners):
    alice, bob = earners[:2]
    tree = tree_of({alice: 5 * EMC, bob: 6 * EMC})
    post_root(tree)
    with ape.reverts("reward: length mismatch"):
        wired_gpu_reward.claim_many([alice, bob], [5 * EMC], [proof_of(tree, alice)], sender=bob)
    with ape.reverts("reward: length mismatch"):
        wired_gpu_reward.claim_many(
            [alice], [5 * EMC], [proof_of(tree, alice), proof_of(tree, bob)], sender=bob
        )


def test_claim_many__empty__pays_nothing(wired_gpu_reward, post_root, earners):
    post_root(tree_of({earners[0]: EMC}))
    receipt = wired_gpu_reward.claim_many([], [], [], sender=earners[0])
    assert receipt.return_value == 0
