"""Constants and helpers shared by the contract tests."""

from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER, ROLE_VALIDATOR  # noqa: F401 - re-exported

EMC = 10**18
INITIAL_SUPPLY = 1_000_000_000 * EMC
UNBONDING_PERIOD = 60
MIN_VALIDATOR_STAKE = 10_000 * EMC
MIN_ROUTER_STAKE = 1_000 * EMC
MIN_COMPUTE_STAKE = 100 * EMC


def single_event(receipt, event):
    """Return the one log of ``event`` in ``receipt``, failing on none or several."""
    logs = list(event.from_receipt(receipt))
    assert len(logs) == 1, f"expected one {event.name}, got {len(logs)}"
    return logs[0]
