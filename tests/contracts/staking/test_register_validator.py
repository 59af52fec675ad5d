"""Staking.register_validator: BLS key with an on-chain proof of possession."""

import ape
import pytest

from offchain.crypto import bls
from tests.contracts.helpers import (
    MIN_COMPUTE_STAKE,
    MIN_VALIDATOR_STAKE,
    ROLE_COMPUTE,
    ROLE_VALIDATOR,
    single_event,
)


def _key_and_proof(seed: bytes, account):
    secret = bls.keygen(seed)
    return (
        bls.pubkey_to_eip2537(bls.public_key(secret)),
        bls.signature_to_eip2537(bls.prove_possession(secret, account.address)),
    )


@pytest.fixture
def staked_validator(stake_as, validators):
    account = validators[0]
    stake_as(account, ROLE_VALIDATOR, MIN_VALIDATOR_STAKE)
    return account


def test_register_validator__valid_proof__stores_key_and_logs(staking, staked_validator):
    pubkey, proof = _key_and_proof(b"v0", staked_validator)
    receipt = staking.register_validator(pubkey, proof, sender=staked_validator)
    assert staking.bls_public_key(staked_validator) == pubkey
    assert staking.validator_count() == 1
    assert staking.validator_at(0) == staked_validator.address
    log = single_event(receipt, staking.ValidatorRegistered)
    assert (log.account, log.public_key) == (staked_validator.address, pubkey)


def test_register_validator__proof_by_another_key__reverts(staking, staked_validator):
    pubkey, _ = _key_and_proof(b"v0", staked_validator)
    _, other_proof = _key_and_proof(b"someone else", staked_validator)
    with ape.reverts("staking: invalid proof of possession"):
        staking.register_validator(pubkey, other_proof, sender=staked_validator)


def test_register_validator__key_not_on_curve__reverts(staking, staked_validator):
    _, proof = _key_and_proof(b"v0", staked_validator)
    with ape.reverts("staking: invalid public key"):
        staking.register_validator(
            bls.encode_fp(1) + bls.encode_fp(1), proof, sender=staked_validator
        )


def test_register_validator__key_not_in_subgroup__reverts(staking, staked_validator):
    from tests.contracts.bls.test_bls12_381_module import _off_subgroup_g1_point

    _, proof = _key_and_proof(b"v0", staked_validator)
    with ape.reverts("staking: invalid public key"):
        staking.register_validator(_off_subgroup_g1_point(), proof, sender=staked_validator)


def test_register_validator__infinity_key__reverts(staking, staked_validator):
    with ape.reverts("staking: invalid public key"):
        staking.register_validator(b"\x00" * 128, b"\x00" * 256, sender=staked_validator)


def test_register_validator__not_staked_as_validator__reverts(staking, stake_as, node_owner):
    stake_as(node_owner, ROLE_COMPUTE, MIN_COMPUTE_STAKE)
    pubkey, proof = _key_and_proof(b"n", node_owner)
    with ape.reverts("staking: not a staked validator"):
        staking.register_validator(pubkey, proof, sender=node_owner)


def test_register_validator__twice__reverts(staking, staked_validator):
    pubkey, proof = _key_and_proof(b"v0", staked_validator)
    staking.register_validator(pubkey, proof, sender=staked_validator)
    other_key, other_proof = _key_and_proof(b"v0-second", staked_validator)
    with ape.reverts("staking: key already registered"):
        staking.register_validator(other_key, other_proof, sender=staked_validator)


def test_register_validator__key_of_another_validator__reverts(staking, stake_as, validators):
    pubkey, proof = _key_and_proof(b"shared", validators[0])
    for account in validators[:2]:
        stake_as(account, ROLE_VALIDATOR, MIN_VALIDATOR_STAKE)
    staking.register_validator(pubkey, proof, sender=validators[0])
    with ape.reverts("staking: key in use"):
        staking.register_validator(pubkey, proof, sender=validators[1])


def test_register_validator__proof_front_run_by_another_account__reverts(
    staking, stake_as, validators
):
    """Key squatting: copy a registration's key and proof from the mempool and send it first."""
    owner, squatter = validators[0], validators[1]
    for account in (owner, squatter):
        stake_as(account, ROLE_VALIDATOR, MIN_VALIDATOR_STAKE)
    pubkey, proof = _key_and_proof(b"owned", owner)
    with ape.reverts("staking: invalid proof of possession"):
        staking.register_validator(pubkey, proof, sender=squatter)
    staking.register_validator(pubkey, proof, sender=owner)
    assert staking.key_owner(_hash(pubkey)) == owner.address


def _hash(data: bytes) -> bytes:
    from offchain.crypto.hashing import keccak

    return keccak(data)
