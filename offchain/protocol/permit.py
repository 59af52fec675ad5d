"""EIP-2612 permits for EMCToken: the typed data a holder signs to approve without a transaction."""

from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data

TOKEN_NAME = "EMC Protocol Token"
TOKEN_VERSION = "1"

_TYPES = {
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
}


@dataclass(frozen=True)
class PermitSignature:
    """A permit's (v, r, s), with r and s as 32-byte words.

    Passing r and s as integers lets some encoders shorten a value with a leading zero byte and
    then pad it on the right as bytes32, which corrupts one signature in about 128.
    """

    v: int
    r: bytes
    s: bytes


def permit_typed_data(
    token: str, chain_id: int, owner: str, spender: str, value: int, nonce: int, deadline: int
) -> dict:
    """Return the EIP-712 typed data of a permit on the EMCToken at ``token``."""
    return {
        "types": _TYPES,
        "primaryType": "Permit",
        "domain": {
            "name": TOKEN_NAME,
            "version": TOKEN_VERSION,
            "chainId": chain_id,
            "verifyingContract": token,
        },
        "message": {
            "owner": owner,
            "spender": spender,
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
    }


def sign_permit(
    private_key: bytes,
    token: str,
    chain_id: int,
    spender: str,
    value: int,
    nonce: int,
    deadline: int,
    owner: str | None = None,
) -> PermitSignature:
    """Return the permit signed by ``private_key`` (its ``v``, ``r``, ``s`` go to ``permit``).

    ``owner`` defaults to the key's address; naming another one forges a permit (for tests).
    """
    owner = owner or Account.from_key(private_key).address
    typed = permit_typed_data(token, chain_id, owner, spender, value, nonce, deadline)
    signed = Account.sign_message(encode_typed_data(full_message=typed), private_key)
    return PermitSignature(signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big"))
