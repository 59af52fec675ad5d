"""EMCToken: fixed supply, ERC-20 transfers and EIP-2612 permit."""

import ape
import pytest
from eth_account import Account

from offchain.protocol.permit import sign_permit
from tests.contracts.helpers import EMC, INITIAL_SUPPLY, single_event


def test_constructor__mints_whole_supply_to_deployer(token, deployer):
    assert token.totalSupply() == INITIAL_SUPPLY
    assert token.balanceOf(deployer) == INITIAL_SUPPLY
    assert (token.name(), token.symbol(), token.decimals()) == ("EMC Protocol Token", "EMC", 18)


def test_mint__not_exported__no_one_can_mint(token):
    assert not hasattr(token, "mint")
    assert not hasattr(token, "set_minter")


def test_transfer__moves_balance_and_logs(token, deployer, user):
    receipt = token.transfer(user, 5 * EMC, sender=deployer)
    assert token.balanceOf(user) == 5 * EMC
    log = single_event(receipt, token.Transfer)
    assert (log.sender, log.receiver, log.value) == (deployer.address, user.address, 5 * EMC)


def test_transfer__more_than_balance__reverts(token, user, stranger):
    with ape.reverts("erc20: transfer amount exceeds balance"):
        token.transfer(stranger, 1, sender=user)


def _permit_signature(token, owner_key, owner, spender, value, nonce, deadline, chain_id):
    return sign_permit(owner_key, token.address, chain_id, spender, value, nonce, deadline, owner)


@pytest.fixture
def permit_owner():
    return Account.create()


def test_permit__valid_signature__sets_allowance(token, chain, user, permit_owner):
    deadline = chain.pending_timestamp + 3600
    signed = _permit_signature(
        token,
        permit_owner.key,
        permit_owner.address,
        user.address,
        7 * EMC,
        0,
        deadline,
        chain.chain_id,
    )
    receipt = token.permit(
        permit_owner.address, user, 7 * EMC, deadline, signed.v, signed.r, signed.s, sender=user
    )
    assert token.allowance(permit_owner.address, user) == 7 * EMC
    assert token.nonces(permit_owner.address) == 1
    log = single_event(receipt, token.Approval)
    assert (log.owner, log.spender, log.value) == (permit_owner.address, user.address, 7 * EMC)


def test_permit__replayed_signature__reverts(token, chain, user, permit_owner):
    deadline = chain.pending_timestamp + 3600
    signed = _permit_signature(
        token,
        permit_owner.key,
        permit_owner.address,
        user.address,
        EMC,
        0,
        deadline,
        chain.chain_id,
    )
    args = (permit_owner.address, user, EMC, deadline, signed.v, signed.r, signed.s)
    token.permit(*args, sender=user)
    with ape.reverts("erc20: invalid signature"):
        token.permit(*args, sender=user)


def test_permit__expired_deadline__reverts(token, chain, user, permit_owner):
    deadline = chain.pending_timestamp - 1
    signed = _permit_signature(
        token,
        permit_owner.key,
        permit_owner.address,
        user.address,
        EMC,
        0,
        deadline,
        chain.chain_id,
    )
    with ape.reverts("erc20: expired deadline"):
        token.permit(
            permit_owner.address, user, EMC, deadline, signed.v, signed.r, signed.s, sender=user
        )


def test_permit__wrong_chain_id__reverts(token, chain, user, permit_owner):
    deadline = chain.pending_timestamp + 3600
    signed = _permit_signature(
        token,
        permit_owner.key,
        permit_owner.address,
        user.address,
        EMC,
        0,
        deadline,
        chain.chain_id + 1,
    )
    with ape.reverts("erc20: invalid signature"):
        token.permit(
            permit_owner.address, user, EMC, deadline, signed.v, signed.r, signed.s, sender=user
        )


def test_permit__r_or_s_with_leading_zero_byte__accepted(token, chain, user):
    # One signature in ~128 has r or s below 2**248; encoded carelessly, such a word shifts.
    owner = Account.from_key(b"\x07" * 32)
    deadline = chain.pending_timestamp + 3600
    for value in range(1, 2_000):
        signed = _permit_signature(
            token, owner.key, owner.address, user.address, value, 0, deadline, chain.chain_id
        )
        if signed.r[0] == 0 or signed.s[0] == 0:
            break
    else:
        pytest.fail("no signature with a leading zero byte in 2,000 tries")
    token.permit(owner.address, user, value, deadline, signed.v, signed.r, signed.s, sender=user)
    assert token.allowance(owner.address, user) == value
