# pragma version ~=0.4.3
"""
@title ERC-721 Receiver Test Harness
@license GNU Affero General Public License v3.0 only
@notice A contract recipient for safe-transfer tests: it accepts tokens
        (returns the `onERC721Received` selector) or refuses them (returns
        another value), as set at deployment. Never deployed outside tests.
"""

from snekmate.tokens.interfaces import IERC721Receiver
implements: IERC721Receiver


# @dev Whether `onERC721Received` answers with the magic value.
accept: public(immutable(bool))


# @dev The last token received, for the tests to read back.
last_token_id: public(uint256)


@deploy
def __init__(accept_: bool):
    """
    @param accept_ True to accept tokens, False to refuse them.
    """
    accept = accept_


@external
def onERC721Received(_operator: address, _from: address, _tokenId: uint256, _data: Bytes[1_024]) -> bytes4:
    """
    @notice Accepts or refuses the token, as configured.
    @return bytes4 The selector when accepting, 0xdeadbeef when refusing.
    """
    self.last_token_id = _tokenId
    if accept:
        return method_id("onERC721Received(address,address,uint256,bytes)", output_type=bytes4)
    return 0xdeadbeef
