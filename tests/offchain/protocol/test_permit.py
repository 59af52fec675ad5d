"""EIP-2612 permits: typed data and 32-byte signature words (the on-chain check is in
tests/contracts/token/test_emc_token.py)."""

from eth_account import Account
from eth_account.messages import encode_typed_data

from offchain.protocol.permit import TOKEN_NAME, permit_typed_data, sign_permit

TOKEN = "0x" + "ab" * 20
SPENDER = "0x" + "cd" * 20


def test_permit_typed_data__names_the_token_domain():
    typed = permit_typed_data(TOKEN, 31337, SPENDER, SPENDER, 5, 0, 99)
    assert typed["domain"] == {
        "name": TOKEN_NAME,
        "version": "1",
        "chainId": 31337,
        "verifyingContract": TOKEN,
    }
    assert typed["message"]["value"] == 5


def test_sign_permit__recovers_to_owner_with_32_byte_words():
    owner = Account.create()
    signed = sign_permit(owner.key, TOKEN, 1, SPENDER, 10, 0, 99)
    assert len(signed.r) == len(signed.s) == 32
    assert signed.v in (27, 28)
    typed = permit_typed_data(TOKEN, 1, owner.address, SPENDER, 10, 0, 99)
    signature = signed.r + signed.s + bytes([signed.v])
    assert (
        Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
        == owner.address
    )


def test_sign_permit__named_owner_is_not_the_signer():
    signer, victim = Account.create(), Account.create()
    signed = sign_permit(signer.key, TOKEN, 1, SPENDER, 10, 0, 99, owner=victim.address)
    typed = permit_typed_data(TOKEN, 1, victim.address, SPENDER, 10, 0, 99)
    signature = signed.r + signed.s + bytes([signed.v])
    assert (
        Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
        == signer.address
    )
