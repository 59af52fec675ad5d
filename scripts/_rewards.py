"""A validator's consensus rewards, read from ComputeConsensus and ConsensusReward.

Every sealed height pays its signers ConsensusReward's rate, split by voting power; a height's
signers are sealed by the commit after it, so the last committed height is not claimable yet,
and a sealed height is claimable once ConsensusReward's balance books it. This walks every
sealed height (two or three calls each), which is quick on a devnet and grows with the chain.
"""

from dataclasses import dataclass, field


@dataclass
class ConsensusRewards:
    """One account's consensus rewards, by what can be done with them now."""

    claimed: int = 0
    claimed_heights: list[int] = field(default_factory=list)
    claimable: int = 0
    # (height, the account's index in that height's validator set): what `claim` takes.
    claimable_heights: list[tuple[int, int]] = field(default_factory=list)
    unbooked: int = 0  # signed and sealed, waiting for ConsensusReward to hold enough EMC
    unbooked_heights: list[int] = field(default_factory=list)
    last_height: int = 0  # the last committed height: its signers are sealed by the next commit


def _member_index(consensus, epoch: int, who: str) -> int | None:
    members = consensus.epoch_header(epoch)[2]
    for index in range(members):
        if consensus.epoch_member(epoch, index)[1] == who:
            return index
    return None


def consensus_rewards(contracts: dict, who: str) -> ConsensusRewards:
    """Return what ``who`` signed and was paid, can claim now, and waits for."""
    consensus, reward = contracts["ComputeConsensus"], contracts["ConsensusReward"]
    rewards = ConsensusRewards(last_height=consensus.last_height())
    booked = reward.bookable_through()
    indices: dict[int, int | None] = {}
    for height in range(1, consensus.sealed_through() + 1):
        rate, bitmap, signer_power, epoch = reward.commit_record(height)
        if epoch not in indices:
            indices[epoch] = _member_index(consensus, epoch, who)
        index = indices[epoch]
        if index is None or not (bitmap >> index) & 1:
            continue
        share = rate * consensus.epoch_member(epoch, index)[0] // signer_power
        if reward.has_claimed(who, height):
            rewards.claimed += share
            rewards.claimed_heights.append(height)
        elif height <= booked:
            rewards.claimable += share
            rewards.claimable_heights.append((height, index))
        else:
            rewards.unbooked += share
            rewards.unbooked_heights.append(height)
    return rewards


def height_ranges(heights: list[int]) -> str:
    """Return heights as ranges, such as ``1-3, 5``."""
    parts: list[str] = []
    for height in sorted(heights):
        if parts and int(parts[-1].rpartition("-")[2]) == height - 1:
            parts[-1] = f"{parts[-1].partition('-')[0]}-{height}"
        else:
            parts.append(str(height))
    return ", ".join(parts)
