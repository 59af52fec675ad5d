"""Deploy the whole settlement system on the test chain and sign commits with real BLS keys."""

from dataclasses import dataclass, field, replace

from offchain.crypto import bls
from offchain.protocol.commit import Commit, commit_digest, registry_hash, signers_bitmap

EMC = 10**18
REWARD_PER_COMMIT = 10 * EMC
EMISSION_PER_COMMIT = 5 * EMC
DOUBLE_SIGN_PENALTY = 5_000 * EMC
REPORTER_SHARE_BPS = 1_000
ZERO = b"\x00" * 32


@dataclass
class System:
    token: object
    staking: object
    market: object
    gpu_reward: object
    consensus_reward: object
    consensus: object
    validators: list = field(default_factory=list)  # (account, secret) in set order
    chain_id: int = 0
    # The bitmap of the last commit this helper submitted: the next one seals it as its parent.
    last_signers: int = 0


def deploy_system(project, chain, deployer, epoch_length: int = 100) -> System:
    """Deploy and wire every contract that a commit touches."""
    token = deployer.deploy(project.EMCToken, 10**9 * EMC)
    staking = deployer.deploy(project.Staking, token, 60, 10_000 * EMC, 1_000 * EMC, 100 * EMC)
    sockets = deployer.deploy(project.ComputeSocket, staking)
    market = deployer.deploy(project.ComputeMarket, token, sockets, deployer, 250, 120)
    gpu_reward = deployer.deploy(project.GPUComputeReward, token, EMISSION_PER_COMMIT)
    consensus_reward = deployer.deploy(project.ConsensusReward, token, REWARD_PER_COMMIT)
    consensus = deployer.deploy(
        project.ComputeConsensus,
        staking,
        token,
        market,
        gpu_reward,
        consensus_reward,
        epoch_length,
        DOUBLE_SIGN_PENALTY,
        REPORTER_SHARE_BPS,
    )
    staking.set_slasher(consensus, sender=deployer)
    market.set_consensus(consensus, sender=deployer)
    market.set_reward_contract(gpu_reward, sender=deployer)
    gpu_reward.set_consensus(consensus, sender=deployer)
    consensus_reward.set_consensus(consensus, sender=deployer)
    token.transfer(consensus_reward, 1_000 * EMC, sender=deployer)
    return System(
        token, staking, market, gpu_reward, consensus_reward, consensus, [], chain.chain_id
    )


def add_validator(system: System, deployer, account, stake: int, seed: bytes) -> int:
    """Stake ``account`` as a validator and register a BLS key; return its secret."""
    secret = bls.keygen(seed)
    system.token.transfer(account, stake, sender=deployer)
    system.token.approve(system.staking, stake, sender=account)
    system.staking.stake(1, stake, sender=account)
    system.staking.register_validator(
        bls.pubkey_to_eip2537(bls.public_key(secret)),
        bls.signature_to_eip2537(bls.prove_possession(secret, account.address)),
        sender=account,
    )
    system.validators.append((account, secret))
    return secret


def make_commit(height: int, **overrides) -> Commit:
    """Return a commit at ``height`` with distinct roots and nothing billed."""
    fields = dict(
        height=height,
        batch_root=height.to_bytes(32, "big"),
        billing_root=ZERO,
        rewards_root=ZERO,
        rewards_total=0,
        registry_updates=(),
        billed_total=0,
    )
    fields.update(overrides)
    return Commit(**fields)


def seal(system: System, commit: Commit, secrets: list[int], contract=None, chain_id=None) -> bytes:
    """Return the EIP-2537 aggregate signature of ``secrets`` over ``commit``'s digest."""
    digest = commit_digest(
        commit, chain_id or system.chain_id, (contract or system.consensus).address
    )
    return bls.signature_to_eip2537(
        bls.aggregate_signatures([bls.sign(s, digest) for s in secrets])
    )


def submit(
    system: System,
    commit: Commit,
    signer_indices,
    sender,
    signature: bytes | None = None,
    bitmap=None,
):
    """Seal ``commit`` by the set members at ``signer_indices`` and send it.

    A commit without ``parent_signers`` (above height 1) seals the previous submitted bitmap.
    """
    if commit.parent_signers == 0 and commit.height > 1:
        commit = replace(commit, parent_signers=system.last_signers)
    if signature is None:
        signature = seal(system, commit, [system.validators[i][1] for i in signer_indices])
    bitmap = signers_bitmap(signer_indices) if bitmap is None else bitmap
    receipt = system.consensus.commit(
        commit.height,
        commit.batch_root,
        commit.billing_root,
        commit.rewards_root,
        commit.rewards_total,
        [u.as_tuple() for u in commit.registry_updates],
        commit.billed_total,
        commit.parent_signers,
        bitmap,
        signature,
        sender=sender,
    )
    system.last_signers = bitmap
    return receipt


def fields_tuple(commit: Commit) -> tuple:
    """Return ``commit`` as the contract's CommitFields tuple."""
    return (
        commit.height,
        commit.batch_root,
        commit.billing_root,
        commit.rewards_root,
        commit.rewards_total,
        registry_hash(commit.registry_updates),
        commit.billed_total,
        commit.parent_signers,
    )
