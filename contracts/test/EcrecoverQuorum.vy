# pragma version ~=0.4.3
"""
@title ecrecover Quorum Baseline
@license GNU Affero General Public License v3.0 only
@notice The baseline that bench/gas.py compares BLS commits with: a quorum
        checked by one ecrecover per signer against a member list in
        storage, signers sorted by address so none counts twice. It stores
        the verified digest, as ComputeConsensus stores each committed one.
"""


# @dev Each member's voting power (0 for non-members), and their sum.
power_of: public(HashMap[address, uint256])
total_power: public(uint256)


# @dev Digests a quorum has signed.
verified: public(HashMap[bytes32, bool])


@external
def add_members(members: DynArray[address, 128], powers: DynArray[uint256, 128]):
    """
    @notice Adds members with their power.
    @param members The member addresses.
    @param powers Their voting power.
    """
    for index: uint256 in range(len(members), bound=128):
        self.power_of[members[index]] = powers[index]
        self.total_power += powers[index]


@external
def verify_quorum(digest: bytes32, signatures: DynArray[Bytes[65], 128]):
    """
    @notice Checks that members holding a quorum of power signed `digest`.
    @param digest The signed digest.
    @param signatures 65-byte (r, s, v) signatures, by ascending signer.
    """
    power: uint256 = 0
    previous: address = empty(address)
    for signature: Bytes[65] in signatures:
        signer: address = ecrecover(
            digest,
            convert(slice(signature, 64, 1), uint8),
            extract32(signature, 0),
            extract32(signature, 32),
        )
        assert convert(signer, uint256) > convert(previous, uint256), "baseline: signers not ascending"
        signer_power: uint256 = self.power_of[signer]
        assert signer_power != 0, "baseline: not a member"
        power += signer_power
        previous = signer
    assert power >= self.total_power * 2 // 3 + 1, "baseline: quorum not met"
    self.verified[digest] = True
