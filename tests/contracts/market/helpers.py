"""Constants and helpers shared by the socket and market tests."""

from offchain.protocol.billing import billing_proof as proof_of
from offchain.protocol.billing import build_billing_tree
from offchain.protocol.permit import sign_permit

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
    return sign_permit(owner_key, token.address, chain_id, spender, value, nonce, deadline, owner)
