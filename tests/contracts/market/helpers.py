"""Constants and helpers shared by the socket and market tests."""

from eth_account import Account
from eth_account.messages import encode_typed_data

from offchain.protocol.billing import billing_proof as proof_of
from offchain.protocol.billing import build_billing_tree

MARKET_FEE_BPS = 250
WITHDRAW_DELAY = 120
BPS = 10_000


def fee_of(price: int) -> int:
    """Return the protocol fee the market takes from a sale at ``price``."""
    return price * MARKET_FEE_BPS // BPS


def billing_root(spent: dict[str, int]) -> bytes:
    """Return the billing root over (user, cumulative spent) pairs."""
    return build_billing_tree(spent)[0].root


def billing_proof(spent: dict[str, int], user: str) -> list[bytes]:
    """Return ``user``'s proof in the billing tree over ``spent``."""
    return proof_of(spent, user)[1]


def permit_signature(
    token, owner_key, owner: str, spender: str, value: int, nonce: int, deadline: int, chain_id: int
):
    """Return the EIP-2612 permit signature of ``owner`` for EMCToken (v, r, s attributes)."""
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": "EMC Protocol Token",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": token.address,
        },
        "message": {
            "owner": owner,
            "spender": spender,
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
    }
    return Account.sign_message(encode_typed_data(full_message=typed), owner_key)
