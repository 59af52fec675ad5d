# pragma version ~=0.4.3
"""
@title Validator Set Test Harness
@license GNU Affero General Public License v3.0 only
@notice Builds real validator-set data contracts with the `validator_set`
        module and stands in for ComputeConsensus toward ConsensusReward:
        it answers `validator_set(epoch)` and `signer_record(height)`, whose
        records tests seal directly.
        Never deployed outside tests.
"""

from ..interfaces import IComputeConsensus
implements: IComputeConsensus

from ..modules import validator_set as vset


# @dev The data contract of each epoch's set.
validator_sets: HashMap[uint256, address]


# @dev The last height sealed by `seal`, plus one (as after a real commit
# that sealed its parent).
last_height: public(uint256)


# @dev Each sealed height: bitmap, signer power and epoch.
struct Record:
    bitmap: uint256
    power: uint256
    epoch: uint256


records: HashMap[uint256, Record]


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
@view
def signers(epoch: uint256, bitmap: uint256) -> (Bytes[128], uint256, uint256, uint256):
    """
    @notice What epoch `epoch`'s set program answers for `bitmap`: the
            signers' aggregate key, total power, member count and the
            non-signers' power.
    """
    return vset._signers(self.validator_sets[epoch], bitmap)


@external
def seal(height: uint256, epoch: uint256, signers_bitmap: uint256, signer_power: uint256):
    """
    @notice Seals height `height`'s signers as the commit after it would.
    """
    self.records[height] = Record(bitmap=signers_bitmap, power=signer_power, epoch=epoch)
    self.last_height = max(self.last_height, height + 1)


@external
@view
def signer_record(height: uint256) -> (uint256, uint256, uint256):
    """
    @notice Height `height`'s sealed signers: bitmap, power, epoch.
    """
    record: Record = self.records[height]
    return record.bitmap, record.power, record.epoch


@external
@view
def sealed_through() -> uint256:
    """
    @notice The last sealed height.
    """
    if self.last_height == 0:
        return 0
    return self.last_height - 1
