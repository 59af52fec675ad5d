"""Voting-power quorum, the same formula in the agents and in ComputeConsensus."""


def quorum(total_power: int) -> int:
    """Return the voting power a decision needs out of ``total_power``: floor(2P/3) + 1."""
    if total_power <= 0:
        raise ValueError("total voting power must be positive")
    return 2 * total_power // 3 + 1


def max_faulty(total_power: int) -> int:
    """Return f, the most voting power that may be faulty while a quorum stays honest."""
    return total_power - quorum(total_power)
