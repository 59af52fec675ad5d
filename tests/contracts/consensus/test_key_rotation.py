"""BLS key rotation: announced, active after a delay, sealing from the next set; evidence is
checked against the key the height's set holds."""

import ape

from offchain.crypto import bls
from offchain.crypto.hashing import keccak
from tests.contracts.consensus.system import fields_tuple, make_commit, seal, submit
from tests.contracts.helpers import single_event

DAY = 86_400


def _new_key(account, seed: bytes):
    secret = bls.keygen(seed)
    return (
        secret,
        bls.pubkey_to_eip2537(bls.public_key(secret)),
        bls.signature_to_eip2537(bls.prove_possession(secret, account.address)),
    )


def test_activate_key__before_the_delay__reverts_then_rotates(four_validator_system, chain):
    system = four_validator_system
    staking, account = system.staking, system.validators[0][0]
    old = staking.bls_public_key(account)
    _, new_key, proof = _new_key(account, b"rotated-0")
    receipt = staking.rotate_key(new_key, proof, sender=account)
    assert single_event(receipt, staking.KeyRotationRequested).public_key == new_key
    chain.pending_timestamp += DAY - 10
    with ape.reverts("staking: key rotation delay not over"):
        staking.activate_key(sender=account)
    chain.pending_timestamp += 10
    staking.activate_key(sender=account)
    assert staking.bls_public_key(account) == new_key
    # The old key stays reserved: nobody can take it over.
    assert staking.key_owner(keccak(old)) == account.address
    with ape.reverts("staking: no key rotation pending"):
        staking.activate_key(sender=account)


def test_rotate_key__proof_bound_to_another_account__reverts(four_validator_system):
    system = four_validator_system
    account, other = system.validators[0][0], system.validators[1][0]
    _, new_key, proof_for_other = _new_key(other, b"rotated-x")
    with ape.reverts("staking: invalid proof of possession"):
        system.staking.rotate_key(new_key, proof_for_other, sender=account)


def test_rotate_key__key_of_another_validator__reverts(four_validator_system):
    system = four_validator_system
    account = system.validators[0][0]
    taken = system.staking.bls_public_key(system.validators[1][0])
    with ape.reverts("staking: key in use"):
        system.staking.rotate_key(taken, b"\x00" * 256, sender=account)


def test_report_double_sign__equivocation_with_the_key_rotated_away__still_slashed(
    four_validator_system, chain, accounts
):
    """Rotating the key must not let a validator escape evidence for the set it sealed in."""
    system = four_validator_system
    account, old_secret = system.validators[2]
    _, new_key, proof = _new_key(account, b"rotated-2")
    system.staking.rotate_key(new_key, proof, sender=account)
    chain.pending_timestamp += DAY
    system.staking.activate_key(sender=account)
    first, second = make_commit(1), make_commit(1, billed_total=1)
    evidence = (
        account,
        fields_tuple(first),
        seal(system, first, [old_secret]),
        fields_tuple(second),
        seal(system, second, [old_secret]),
    )
    receipt = system.consensus.report_double_sign(*evidence, sender=accounts[17])
    assert single_event(receipt, system.consensus.DoubleSignSlashed).validator == account.address
    # The epoch's set still checks commits against the old key.
    submit(system, make_commit(1), [0, 1, 2], accounts[1])
