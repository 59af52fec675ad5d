"""Submit quorum-sealed commits and claim rewards: the settlement path on-chain."""

from eth_account.signers.local import LocalAccount

from offchain.chain.chain_client import ChainClient, Receipt
from offchain.crypto import bls
from offchain.protocol.commit import Commit, commit_digest, signers_bitmap


def seal_commit(chain: ChainClient, commit: Commit, secrets: list[int]) -> bytes:
    """Return the EIP-2537 aggregate BLS seal of ``secrets`` over ``commit``'s digest."""
    digest = commit_digest(commit, chain.w3.eth.chain_id, chain["ComputeConsensus"].address)
    return bls.signature_to_eip2537(
        bls.aggregate_signatures([bls.sign(s, digest) for s in secrets])
    )


def submit_commit(
    chain: ChainClient, commit: Commit, signers: dict[int, int], sender: LocalAccount
) -> Receipt:
    """Seal ``commit`` by ``signers`` (set index -> BLS secret) and send it from ``sender``."""
    signature = seal_commit(chain, commit, list(signers.values()))
    call = chain["ComputeConsensus"].functions.commit(
        commit.height,
        commit.batch_root,
        commit.billing_root,
        commit.rewards_root,
        commit.rewards_total,
        [u.as_tuple() for u in commit.registry_updates],
        commit.billed_total,
        commit.parent_signers,
        signers_bitmap(signers.keys()),
        signature,
    )
    # A commit touches four cold contracts and a dozen cold slots: listing them saves gas.
    return chain.transact(sender, call, access_list=True)


def claim_rewards(
    chain: ChainClient, account: str, cumulative: int, proof: list[bytes], sender: LocalAccount
) -> Receipt:
    """Claim ``account``'s unclaimed compute/router earnings with its leaf's proof."""
    call = chain["GPUComputeReward"].functions.claim(account, cumulative, proof)
    return chain.transact(sender, call)
