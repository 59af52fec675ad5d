# pragma version ~=0.4.3
"""
@title Governance Timelock
@custom:contract-name Timelock
@license GNU Affero General Public License v3.0 only
@notice The owner of every owned EMC contract (Staking, ComputeMarket,
        GPUComputeReward, ConsensusReward): snekmate's timelock controller
        as is. Proposers schedule a call, which executors may run once the
        delay has passed; everyone sees it coming for that long. The delay
        itself changes only through a timelocked call to `update_delay`.
        Deployments pick the minimum delay (the devnet a short one).
"""


from snekmate.auth import access_control
initializes: access_control

from snekmate.governance import timelock_controller
initializes: timelock_controller[access_control := access_control]


exports: timelock_controller.__interface__


@deploy
@payable
def __init__(
    minimum_delay_: uint256,
    proposers_: DynArray[address, timelock_controller._DYNARRAY_BOUND],
    executors_: DynArray[address, timelock_controller._DYNARRAY_BOUND],
    admin_: address,
):
    """
    @dev See snekmate's `timelock_controller.__init__`.
    @param minimum_delay_ The minimum delay of operations, in seconds.
    @param proposers_ Accounts that may schedule (and cancel) operations.
    @param executors_ Accounts that may execute ready operations.
    @param admin_ An optional admin that may grant roles without delay
           (the zero address for none).
    """
    access_control.__init__()
    timelock_controller.__init__(minimum_delay_, proposers_, executors_, admin_)
