"""ComputeConsensus.commit: quorum, BLS seal, heights, bitmaps, settlement side effects."""

import ape
import pytest

from offchain.crypto import bls
from offchain.protocol.commit import RegistryUpdate, commit_digest
from tests.contracts.consensus.system import (
    EMC,
    REWARD_PER_COMMIT,
    add_validator,
    deploy_system,
    make_commit,
    seal,
    submit,
)
from tests.contracts.helpers import single_event


def test_commit__four_validators_all_sign__logs_digest_and_roots(four_validator_system, accounts):
    system = four_validator_system
    commit = make_commit(1)
    receipt = submit(system, commit, [0, 1, 2, 3], accounts[1])
    consensus = system.consensus
    assert consensus.last_height() == 1
    log = single_event(receipt, consensus.StateCommitted)
    assert (log.height, log.epoch, log.batch_root, log.billed_total, log.signers_bitmap) == (
        1,
        0,
        commit.batch_root,
        0,
        0b1111,
    )
    assert log.signer_power == log.total_power == 40_000 * EMC
    assert log.digest == commit_digest(commit, system.chain_id, consensus.address)
    # Height 1 is not sealed until height 2 names its signers.
    assert consensus.sealed_through() == 0
    assert consensus.signer_record(1) == (0, 0, 0)


def test_commit__three_of_four__meets_quorum(four_validator_system, accounts):
    submit(four_validator_system, make_commit(1), [0, 1, 3], accounts[1])
    assert four_validator_system.consensus.last_height() == 1


def test_commit__two_of_four__quorum_not_met(four_validator_system, accounts):
    with ape.reverts("consensus: quorum not met"):
        submit(four_validator_system, make_commit(1), [0, 2], accounts[1])


@pytest.fixture(scope="module")
def weighted_systems(project, chain, accounts):
    """Two 4-validator sets where members 0-2 hold 30,000 EMC and member 3 holds
    15,000 EMC - 1 wei (so 0-2 meet quorum exactly) or 15,000 EMC (they miss by 1 wei)."""
    deployer = accounts[0]
    systems = {}
    for name, last_stake in (("exact", 15_000 * EMC - 1), ("short", 15_000 * EMC)):
        system = deploy_system(project, chain, deployer)
        for i in range(3):
            add_validator(system, deployer, accounts[10 + i], 10_000 * EMC, f"w{name}{i}".encode())
        add_validator(system, deployer, accounts[13], last_stake, f"w{name}3".encode())
        system.consensus.bootstrap(sender=deployer)
        systems[name] = system
    return systems


def test_commit__quorum_met_exactly__accepted(weighted_systems, accounts):
    system = weighted_systems["exact"]
    header = system.consensus.epoch_header(0)
    assert system.consensus.quorum(header[1]) == 30_000 * EMC
    submit(system, make_commit(1), [0, 1, 2], accounts[1])
    assert system.consensus.last_height() == 1


def test_commit__quorum_missed_by_one_unit__reverts(weighted_systems, accounts):
    system = weighted_systems["short"]
    assert system.consensus.quorum(system.consensus.epoch_header(0)[1]) == 30_000 * EMC + 1
    with ape.reverts("consensus: quorum not met"):
        submit(system, make_commit(1), [0, 1, 2], accounts[1])


def test_commit__seven_validators__five_sign(project, chain, accounts):
    deployer = accounts[0]
    system = deploy_system(project, chain, deployer)
    for i in range(7):
        add_validator(system, deployer, accounts[10 + i], 10_000 * EMC, f"seven{i}".encode())
    system.consensus.bootstrap(sender=deployer)
    with ape.reverts("consensus: quorum not met"):
        submit(system, make_commit(1), [0, 1, 2, 3], accounts[1])
    receipt = submit(system, make_commit(1), [0, 2, 3, 5, 6], accounts[1])
    assert single_event(receipt, system.consensus.StateCommitted).signer_power == 50_000 * EMC


def test_commit__replayed_height__reverts(four_validator_system, accounts):
    submit(four_validator_system, make_commit(1), [0, 1, 2], accounts[1])
    with ape.reverts("consensus: height already committed"):
        submit(four_validator_system, make_commit(1), [0, 1, 2], accounts[1])


def test_commit__skipped_height__reverts(four_validator_system, accounts):
    with ape.reverts("consensus: height skipped"):
        submit(four_validator_system, make_commit(2), [0, 1, 2], accounts[1])


def test_commit__bitmap_bit_beyond_set__reverts(four_validator_system, accounts):
    system = four_validator_system
    with ape.reverts("consensus: bitmap beyond the set"):
        submit(system, make_commit(1), [0, 1, 2], accounts[1], bitmap=0b10111)


def test_commit__signer_outside_set__invalid_signature(four_validator_system, accounts):
    system = four_validator_system
    commit = make_commit(1)
    outsider = bls.keygen(b"outsider")
    signature = seal(system, commit, [system.validators[0][1], system.validators[1][1], outsider])
    with ape.reverts("consensus: invalid signature"):
        submit(system, commit, [0, 1, 2], accounts[1], signature=signature)


def test_commit__right_keys_other_digest__invalid_signature(four_validator_system, accounts):
    system = four_validator_system
    signature = seal(system, make_commit(1, billed_total=1), [s for _, s in system.validators[:3]])
    with ape.reverts("consensus: invalid signature"):
        submit(system, make_commit(1), [0, 1, 2], accounts[1], signature=signature)


def test_commit__signed_for_another_chain_id__invalid_signature(
    four_validator_system, accounts, chain
):
    system = four_validator_system
    commit = make_commit(1)
    secrets = [s for _, s in system.validators[:3]]
    signature = seal(system, commit, secrets, chain_id=chain.chain_id + 1)
    with ape.reverts("consensus: invalid signature"):
        submit(system, commit, [0, 1, 2], accounts[1], signature=signature)


def test_commit__signed_for_another_contract__invalid_signature(four_validator_system, accounts):
    system = four_validator_system
    commit = make_commit(1)
    secrets = [s for _, s in system.validators[:3]]
    signature = seal(system, commit, secrets, contract=system.staking)
    with ape.reverts("consensus: invalid signature"):
        submit(system, commit, [0, 1, 2], accounts[1], signature=signature)


def test_commit__signature_not_on_curve__pairing_precompile_failed(four_validator_system, accounts):
    garbage = b"".join(bls.encode_fp(v) for v in (1, 2, 3, 4))
    with ape.reverts("consensus: pairing precompile failed"):
        submit(four_validator_system, make_commit(1), [0, 1, 2], accounts[1], signature=garbage)


def test_commit__pairing_returns_zero__invalid_signature(four_validator_system, accounts):
    # A valid G2 point that is nobody's signature: the pairing runs and is not 1.
    not_a_signature = bls.signature_to_eip2537(bls.sign(bls.keygen(b"x"), b"unrelated"))
    with ape.reverts("consensus: invalid signature"):
        submit(
            four_validator_system, make_commit(1), [0, 1, 2], accounts[1], signature=not_a_signature
        )


def test_commit__books_consensus_reward_and_applies_registry(four_validator_system, accounts):
    system = four_validator_system
    node = accounts[15]
    commit = make_commit(1, registry_updates=(RegistryUpdate(node.address, 1_234, 77, False),))
    submit(system, commit, [0, 1, 2], accounts[1])
    assert system.staking.nodes(node).e_power == 1_234
    assert system.staking.nodes(node).reputation == 77
    # Height 1's reward is claimable once height 2 seals height 1's signers.
    submit(system, make_commit(2), [0, 1, 2], accounts[1])
    claimable = system.consensus_reward.claimable(system.validators[0][0], [1], [0])
    assert claimable == REWARD_PER_COMMIT // 3


def test_commit__submitter_drops_a_signer_from_its_bitmap__reward_follows_the_sealed_set(
    four_validator_system, accounts
):
    """The submitter used to choose who is paid: now the next quorum seals who signed."""
    system = four_validator_system
    # All four sealed height 1, but the submitter lists only three in its bitmap.
    submit(system, make_commit(1), [0, 1, 2], accounts[1])
    # Height 2's quorum saw all four seals at height 1 and seals that set.
    receipt = submit(system, make_commit(2, parent_signers=0b1111), [0, 1, 2], accounts[1])
    assert system.consensus.signer_record(1) == (0b1111, 40_000 * EMC, 0)
    assert receipt.gas_used > 0
    dropped = system.validators[3][0]
    assert system.consensus_reward.claimable(dropped, [1], [3]) == REWARD_PER_COMMIT // 4
    # A different parent set is a different digest: the submitter cannot swap it.
    commit = make_commit(3, parent_signers=0b0111)
    signature = seal(
        system, make_commit(3, parent_signers=0b0111), [s for _, s in system.validators[:3]]
    )
    with ape.reverts("consensus: invalid signature"):
        submit(
            system,
            make_commit(3, parent_signers=0b1011),
            [0, 1, 2],
            accounts[1],
            signature=signature,
        )
    submit(system, commit, [0, 1, 2], accounts[1], signature=signature)


def test_commit__parent_signers_below_quorum__reverts(four_validator_system, accounts):
    system = four_validator_system
    submit(system, make_commit(1), [0, 1, 2], accounts[1])
    with ape.reverts("consensus: parent signers below quorum"):
        submit(system, make_commit(2, parent_signers=0b0011), [0, 1, 2], accounts[1])
    with ape.reverts("consensus: parent signers beyond the set"):
        submit(system, make_commit(2, parent_signers=0b10111), [0, 1, 2], accounts[1])


def test_commit__parent_signers_at_height_one__reverts(four_validator_system, accounts):
    with ape.reverts("consensus: parent signers at height 1"):
        submit(four_validator_system, make_commit(1, parent_signers=0b111), [0, 1, 2], accounts[1])


def test_bootstrap__twice__reverts_and_ownership_is_gone(four_validator_system, accounts):
    assert four_validator_system.consensus.owner() == ape.utils.ZERO_ADDRESS
    with ape.reverts("ownable: caller is not the owner"):
        four_validator_system.consensus.bootstrap(sender=accounts[0])


def test_bootstrap__not_owner__reverts(project, chain, accounts):
    system = deploy_system(project, chain, accounts[0])
    with ape.reverts("ownable: caller is not the owner"):
        system.consensus.bootstrap(sender=accounts[1])


def test_bootstrap__no_validators__reverts(project, chain, accounts):
    system = deploy_system(project, chain, accounts[0])
    with ape.reverts("consensus: no active validators"):
        system.consensus.bootstrap(sender=accounts[0])
