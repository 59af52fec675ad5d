# pragma version ~=0.4.3
"""
@title EMC Token
@custom:contract-name EMCToken
@license GNU Affero General Public License v3.0 only
@notice The ERC-20 token that pays for compute, stakes agents and rewards
        them. EIP-2612 `permit` lets a user approve and deposit in one
        transaction. The whole supply is minted once, to the deployer, at
        construction: there is no mint afterwards, by anyone.
"""


from ethereum.ercs import IERC20
implements: IERC20

from ethereum.ercs import IERC20Detailed
implements: IERC20Detailed

from snekmate.tokens.interfaces import IERC20Permit
implements: IERC20Permit

from snekmate.utils.interfaces import IERC5267
implements: IERC5267


from snekmate.auth import ownable as ow
initializes: ow

from snekmate.tokens import erc20
initializes: erc20[ownable := ow]


# @dev The ERC-20, metadata, permit and EIP-5267 surface of snekmate's
# module. Left out on purpose: `mint`, `set_minter`, `is_minter` (the supply
# is fixed), `owner`, `transfer_ownership`, `renounce_ownership` (the token
# has nothing to govern once minted).
exports: (
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.transfer,
    erc20.transferFrom,
    erc20.approve,
    erc20.burn,
    erc20.burn_from,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
)


# @dev The token's name, symbol and EIP-712 signing domain version.
NAME: constant(String[25]) = "EMC Protocol Token"
SYMBOL: constant(String[5]) = "EMC"
DECIMALS: constant(uint8) = 18
EIP712_VERSION: constant(String[20]) = "1"


@deploy
def __init__(initial_supply: uint256):
    """
    @dev Mints `initial_supply` to the deployer, then gives up the minter role
         and the ownership that snekmate's module grants at construction, so
         no one can ever mint again.
    @param initial_supply The whole supply, in the smallest unit.
    """
    ow.__init__()
    erc20.__init__(NAME, SYMBOL, DECIMALS, NAME, EIP712_VERSION)
    erc20._mint(msg.sender, initial_supply)
    erc20.is_minter[msg.sender] = False
    log erc20.RoleMinterChanged(minter=msg.sender, status=False)
    ow._transfer_ownership(empty(address))
