"""ComputeConsensus.report_double_sign: two digests at one height by one key is slashed once."""

import ape

from offchain.crypto import bls
from tests.contracts.consensus.system import (
    DOUBLE_SIGN_PENALTY,
    EMC,
    REPORTER_SHARE_BPS,
    add_validator,
    deploy_system,
    fields_tuple,
    make_commit,
    seal,
    submit,
)
from tests.contracts.helpers import single_event


def _evidence(system, index, first, second):
    secret = system.validators[index][1]
    return (
        system.validators[index][0],
        fields_tuple(first),
        seal(system, first, [secret]),
        fields_tuple(second),
        seal(system, second, [secret]),
    )


def test_report_double_sign__two_digests__slashes_and_pays_reporter(
    four_validator_system, accounts
):
    system, reporter = four_validator_system, accounts[17]
    offender = system.validators[1][0]
    pool_before = system.token.balanceOf(system.consensus_reward)
    evidence = _evidence(system, 1, make_commit(1), make_commit(1, billed_total=1))
    receipt = system.consensus.report_double_sign(*evidence, sender=reporter)
    reward = DOUBLE_SIGN_PENALTY * REPORTER_SHARE_BPS // 10_000
    assert system.staking.staked(offender) == 10_000 * EMC - DOUBLE_SIGN_PENALTY
    assert system.token.balanceOf(reporter) == reward
    assert (
        system.token.balanceOf(system.consensus_reward)
        == pool_before + DOUBLE_SIGN_PENALTY - reward
    )
    log = single_event(receipt, system.consensus.DoubleSignSlashed)
    assert (log.validator, log.reporter, log.height, log.slashed, log.reporter_reward) == (
        offender.address,
        reporter.address,
        1,
        DOUBLE_SIGN_PENALTY,
        reward,
    )
    assert log.digest_a != log.digest_b


def test_report_double_sign__same_evidence_twice__reverts(four_validator_system, accounts):
    system = four_validator_system
    evidence = _evidence(system, 0, make_commit(1), make_commit(1, billed_total=9))
    system.consensus.report_double_sign(*evidence, sender=accounts[17])
    with ape.reverts("consensus: evidence already used"):
        system.consensus.report_double_sign(*evidence, sender=accounts[17])


def test_report_double_sign__same_digest__reverts(four_validator_system, accounts):
    system = four_validator_system
    evidence = _evidence(system, 0, make_commit(1), make_commit(1))
    with ape.reverts("consensus: evidence digests equal"):
        system.consensus.report_double_sign(*evidence, sender=accounts[17])


def test_report_double_sign__different_heights__reverts(four_validator_system, accounts):
    system = four_validator_system
    evidence = _evidence(system, 0, make_commit(3), make_commit(4))
    with ape.reverts("consensus: evidence heights differ"):
        system.consensus.report_double_sign(*evidence, sender=accounts[17])


def test_report_double_sign__signature_by_another_key__reverts(four_validator_system, accounts):
    system = four_validator_system
    validator, first, sig_a, second, _ = _evidence(
        system, 0, make_commit(1), make_commit(1, billed_total=2)
    )
    forged = seal(system, make_commit(1, billed_total=2), [bls.keygen(b"framer")])
    with ape.reverts("consensus: invalid evidence signature"):
        system.consensus.report_double_sign(
            validator, first, sig_a, second, forged, sender=accounts[17]
        )


def test_report_double_sign__account_without_key__reverts(four_validator_system, accounts):
    system = four_validator_system
    _, first, sig_a, second, sig_b = _evidence(
        system, 0, make_commit(1), make_commit(1, billed_total=2)
    )
    with ape.reverts("consensus: not a member at that height"):
        system.consensus.report_double_sign(
            accounts[18], first, sig_a, second, sig_b, sender=accounts[17]
        )


def test_report_double_sign__made_up_future_height__reverts(four_validator_system, accounts):
    """A leaked key used to be slashable once per made-up height."""
    system = four_validator_system
    evidence = _evidence(system, 0, make_commit(2), make_commit(2, billed_total=1))
    with ape.reverts("consensus: evidence height out of range"):
        system.consensus.report_double_sign(*evidence, sender=accounts[17])


def test_report_double_sign__height_older_than_an_epoch__reverts(project, chain, accounts):
    deployer = accounts[0]
    system = deploy_system(project, chain, deployer, epoch_length=2)
    for i in range(4):
        add_validator(system, deployer, accounts[10 + i], 10_000 * EMC, f"old{i}".encode())
    system.consensus.bootstrap(sender=deployer)
    for height in (1, 2, 3):
        submit(system, make_commit(height), [0, 1, 2], accounts[1])
    evidence = _evidence(system, 0, make_commit(1), make_commit(1, billed_total=1))
    with ape.reverts("consensus: evidence height out of range"):
        system.consensus.report_double_sign(*evidence, sender=accounts[17])
    # Height 2 is within the last epoch_length heights: still punishable.
    evidence = _evidence(system, 0, make_commit(2), make_commit(2, billed_total=1))
    system.consensus.report_double_sign(*evidence, sender=accounts[17])


def test_report_double_sign__self_report__refunds_nothing(four_validator_system, accounts):
    """A self-report used to hand the offender back the reporter's 10 %."""
    system = four_validator_system
    offender = system.validators[1][0]
    pool_before = system.token.balanceOf(system.consensus_reward)
    wallet_before = system.token.balanceOf(offender)
    evidence = _evidence(system, 1, make_commit(1), make_commit(1, billed_total=1))
    receipt = system.consensus.report_double_sign(*evidence, sender=offender)
    assert single_event(receipt, system.consensus.DoubleSignSlashed).reporter_reward == 0
    assert system.token.balanceOf(offender) == wallet_before
    assert system.token.balanceOf(system.consensus_reward) == pool_before + DOUBLE_SIGN_PENALTY


def test_report_double_sign__large_stake_equivocates__pays_in_proportion(project, chain, accounts):
    """A flat penalty let a large stake equivocate for the price of a small one: now a
    double-sign costs half the power it signed with, the flat penalty being only the floor."""
    deployer = accounts[0]
    system = deploy_system(project, chain, deployer)
    for i, stake in enumerate([10_000 * EMC, 10_000 * EMC, 10_000 * EMC, 100_000 * EMC]):
        add_validator(system, deployer, accounts[10 + i], stake, f"prop{i}".encode())
    system.consensus.bootstrap(sender=deployer)
    assert system.consensus.DOUBLE_SIGN_POWER_BPS() == 5_000
    whale, small = system.validators[3][0], system.validators[0][0]
    receipt = system.consensus.report_double_sign(
        *_evidence(system, 3, make_commit(1), make_commit(1, billed_total=1)), sender=accounts[17]
    )
    assert single_event(receipt, system.consensus.DoubleSignSlashed).slashed == 50_000 * EMC
    assert system.staking.staked(whale) == 50_000 * EMC
    # At the minimum stake the proportional part equals the floor.
    receipt = system.consensus.report_double_sign(
        *_evidence(system, 0, make_commit(1), make_commit(1, billed_total=2)), sender=accounts[17]
    )
    assert single_event(receipt, system.consensus.DoubleSignSlashed).slashed == DOUBLE_SIGN_PENALTY
    assert system.staking.staked(small) == 10_000 * EMC - DOUBLE_SIGN_PENALTY
