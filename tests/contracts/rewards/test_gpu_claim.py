"""GPUComputeReward.claim: a cumulative leaf pays what it holds beyond past claims."""

import ape

from tests.contracts.helpers import single_event
from tests.contracts.rewards.helpers import EMC, proof_of, tree_of


def test_claim__valid_leaf__pays_account(wired_gpu_reward, post_root, token, earners):
    alice, bob = earners[:2]
    tree = tree_of({alice: 7 * EMC, bob: 3 * EMC})
    post_root(tree)
    receipt = wired_gpu_reward.claim(alice, 7 * EMC, proof_of(tree, alice), sender=alice)
    assert token.balanceOf(alice) == 7 * EMC
    assert wired_gpu_reward.claimed(alice) == 7 * EMC
    assert wired_gpu_reward.total_claimed() == 7 * EMC
    assert token.balanceOf(wired_gpu_reward) == 3 * EMC
    log = single_event(receipt, wired_gpu_reward.Claimed)
    assert (log.account, log.caller, log.amount, log.cumulative) == (
        alice.address,
        alice.address,
        7 * EMC,
        7 * EMC,
    )
    assert receipt.return_value == 7 * EMC


def test_claim__same_claim_again__pays_nothing_more(wired_gpu_reward, post_root, token, earners):
    alice, bob = earners[:2]
    tree = tree_of({alice: 7 * EMC, bob: 3 * EMC})
    post_root(tree)
    wired_gpu_reward.claim(alice, 7 * EMC, proof_of(tree, alice), sender=alice)
    receipt = wired_gpu_reward.claim(alice, 7 * EMC, proof_of(tree, alice), sender=alice)
    assert token.balanceOf(alice) == 7 * EMC
    assert wired_gpu_reward.total_claimed() == 7 * EMC
    assert list(wired_gpu_reward.Claimed.from_receipt(receipt)) == []
    assert list(token.Transfer.from_receipt(receipt)) == []
    assert receipt.return_value == 0


def test_claim__later_larger_cumulative__pays_only_difference(
    wired_gpu_reward, post_root, token, earners
):
    alice, bob = earners[:2]
    first = tree_of({alice: 7 * EMC, bob: 3 * EMC})
    post_root(first)
    wired_gpu_reward.claim(alice, 7 * EMC, proof_of(first, alice), sender=alice)
    second = tree_of({alice: 12 * EMC, bob: 4 * EMC})
    post_root(second)
    receipt = wired_gpu_reward.claim(alice, 12 * EMC, proof_of(second, alice), sender=alice)
    assert token.balanceOf(alice) == 12 * EMC
    log = single_event(receipt, wired_gpu_reward.Claimed)
    assert (log.account, log.caller, log.amount, log.cumulative) == (
        alice.address,
        alice.address,
        5 * EMC,
        12 * EMC,
    )


def test_claim__skipped_roots__one_claim_collects_all(wired_gpu_reward, post_root, token, earners):
    alice, bob = earners[:2]
    for step in range(1, 4):
        tree = tree_of({alice: step * EMC, bob: step * 2 * EMC})
        post_root(tree)
    wired_gpu_reward.claim(bob, 6 * EMC, proof_of(tree, bob), sender=bob)
    assert token.balanceOf(bob) == 6 * EMC


def test_claim__by_someone_else__pays_the_account(wired_gpu_reward, post_root, token, earners):
    alice, bob, carol = earners[:3]
    tree = tree_of({alice: 7 * EMC, bob: 3 * EMC})
    post_root(tree)
    receipt = wired_gpu_reward.claim(bob, 3 * EMC, proof_of(tree, bob), sender=carol)
    assert token.balanceOf(bob) == 3 * EMC
    assert token.balanceOf(carol) == 0
    log = single_event(receipt, wired_gpu_reward.Claimed)
    assert (log.account, log.caller, log.amount) == (bob.address, carol.address, 3 * EMC)


def test_claim__wrong_amount__reverts(wired_gpu_reward, post_root, earners):
    alice, bob = earners[:2]
    tree = tree_of({alice: 7 * EMC, bob: 3 * EMC})
    post_root(tree)
    with ape.reverts("reward: invalid proof"):
        wired_gpu_reward.claim(alice, 7 * EMC + 1, proof_of(tree, alice), sender=alice)


def test_claim__wrong_proof__reverts(wired_gpu_reward, post_root, earners):
    alice, bob, carol = earners[:3]
    tree = tree_of({alice: 7 * EMC, bob: 3 * EMC, carol: 1})
    post_root(tree)
    with ape.reverts("reward: invalid proof"):
        wired_gpu_reward.claim(alice, 7 * EMC, proof_of(tree, bob), sender=alice)
    with ape.reverts("reward: invalid proof"):
        wired_gpu_reward.claim(alice, 7 * EMC, [], sender=alice)


def test_claim__other_accounts_leaf__reverts(wired_gpu_reward, post_root, earners):
    alice, bob = earners[:2]
    tree = tree_of({alice: 7 * EMC, bob: 3 * EMC})
    post_root(tree)
    with ape.reverts("reward: invalid proof"):
        wired_gpu_reward.claim(bob, 7 * EMC, proof_of(tree, alice), sender=bob)


def test_claim__leaf_of_an_older_root__reverts(wired_gpu_reward, post_root, earners):
    alice, bob = earners[:2]
    old = tree_of({alice: 7 * EMC, bob: 3 * EMC})
    post_root(old)
    post_root(tree_of({alice: 8 * EMC, bob: 3 * EMC}))
    with ape.reverts("reward: invalid proof"):
        wired_gpu_reward.claim(alice, 7 * EMC, proof_of(old, alice), sender=alice)


def test_claim__before_any_root__reverts(wired_gpu_reward, earners):
    alice = earners[0]
    tree = tree_of({alice: 1})
    with ape.reverts("reward: invalid proof"):
        wired_gpu_reward.claim(alice, 1, proof_of(tree, alice), sender=alice)


def test_claim__root_that_lowered_a_leaf__caps_payouts_at_total(
    wired_gpu_reward, post_root, token, earners
):
    alice, bob = earners[:2]
    first = tree_of({alice: 10 * EMC, bob: 0})
    post_root(first)
    wired_gpu_reward.claim(alice, 10 * EMC, proof_of(first, alice), sender=alice)
    # A faulty root moves alice's earnings to bob without raising the total.
    second = tree_of({alice: 0, bob: 10 * EMC})
    post_root(second, billed=0)
    with ape.reverts("reward: claims exceed total"):
        wired_gpu_reward.claim(bob, 10 * EMC, proof_of(second, bob), sender=bob)
    assert token.balanceOf(bob) == 0


def test_rewards_leaf__matches_offchain_encoding(gpu_reward, earners):
    from offchain.protocol.rewards import rewards_leaf

    for account, amount in zip(earners, [0, 1, 10**18, 2**256 - 1], strict=True):
        assert bytes(gpu_reward.rewards_leaf(account, amount)) == rewards_leaf(str(account), amount)


def test_claim__billing_leaf_replayed_as_a_rewards_proof__rejected(
    wired_gpu_reward, post_root, earners
):
    # A root over billing leaves (user, cumulative spent) installed as a rewards root: a proof of
    # one of those leaves claims nothing, since the two trees' records carry different type tags.
    from offchain.protocol.billing import build_billing_tree

    alice, bob = earners[:2]
    spent = {str(alice): 7 * EMC, str(bob): 3 * EMC}
    billing_tree, users = build_billing_tree(spent)
    fake = type("Tree", (), {"root": billing_tree.root, "total": 10 * EMC})()
    post_root(fake)
    proof = billing_tree.proof(users.index(str(alice)))
    with ape.reverts("reward: invalid proof"):
        wired_gpu_reward.claim(alice, 7 * EMC, proof, sender=alice)
    # The same amounts as rewards leaves do verify under a rewards root.
    tree = tree_of({alice: 7 * EMC, bob: 3 * EMC})
    post_root(tree, billed=0)
    assert wired_gpu_reward.claim(alice, 7 * EMC, proof_of(tree, alice), sender=alice).return_value
