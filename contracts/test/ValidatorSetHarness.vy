# pragma version ~=0.4.3
"""
@title Validator Set Test Harness
@license GNU Affero General Public License v3.0 only
@notice Builds real validator-set data contracts with the `validator_set`
        module and stands in for ComputeConsensus toward ConsensusReward:
        it answers `validator_set(epoch)` and forwards `record_commit`.
        Never deployed outside tests.
"""

from ..interfaces import IComputeConsensus
implements: IComputeConsensus

from ..interfaces import IConsensusReward

from ..modules import validator_set as vset


# @dev The data contract of each epoch's set.
validator_sets: HashMap[uint256, address]


# @dev The last height forwarded to the reward contract.
last_height: public(uint256)


@external
def store(epoch: uint256, data: Bytes[vset.MAX_DATA_SIZE]) -> address:
    """
    @notice Deploys `data` as epoch `epoch`'s set data contract.
    """
    data_contract: address = vset._store(data)
    self.validator_sets[epoch] = data_contract
    return data_contract


@external
@pure
def entry(key: Bytes[128], power: uint256, member: address) -> Bytes[160]:
    """
    @notice One member's 160 bytes of set data.
    """
    return vset._entry(key, power, member)


@external
@view
def validator_set(epoch: uint256) -> address:
    """
    @notice The data contract holding epoch `epoch`'s validator set.
    """
    return self.validator_sets[epoch]


@external
@view
def member_power(epoch: uint256, index: uint256) -> (uint256, address):
    """
    @notice Member `index`'s power and address in epoch `epoch`'s set.
    """
    return vset._member_power(self.validator_sets[epoch], index)


@external
@view
def header(epoch: uint256) -> (Bytes[128], uint256, uint256):
    """
    @notice Epoch `epoch`'s aggregate key, total power and member count.
    """
    return vset._header(self.validator_sets[epoch])


@external
def record_commit(
    reward: IConsensusReward, height: uint256, epoch: uint256, signers_bitmap: uint256, signer_power: uint256
):
    """
    @notice Calls `reward.record_commit` as consensus would after a commit.
    """
    self.last_height = height
    extcall reward.record_commit(height, epoch, signers_bitmap, signer_power)
