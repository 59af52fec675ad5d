"""The EIP-712 commit digest and the registry hash agree between Python and the contract."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from offchain.protocol.commit import Commit, RegistryUpdate, commit_digest, registry_hash
from offchain.protocol.quorum import quorum
from tests.contracts.consensus.system import fields_tuple

words = st.binary(min_size=32, max_size=32)
amounts = st.integers(min_value=0, max_value=2**256 - 1)
updates = st.lists(
    st.builds(
        RegistryUpdate,
        node=st.builds(lambda b: "0x" + b.hex(), st.binary(min_size=20, max_size=20)),
        e_power=amounts,
        reputation=amounts,
        blacklisted=st.booleans(),
    ),
    max_size=4,
)


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 2**64),
    roots=st.tuples(words, words, words),
    total=amounts,
    billed=amounts,
    regs=updates,
    parent=amounts,
)
def test_commit_digest__matches_python(
    four_validator_system, chain, height, roots, total, billed, regs, parent
):
    from eth_utils import to_checksum_address

    regs = [
        RegistryUpdate(to_checksum_address(u.node), u.e_power, u.reputation, u.blacklisted)
        for u in regs
    ]
    commit = Commit(height, *roots, total, tuple(regs), billed, parent)
    consensus = four_validator_system.consensus
    assert consensus.registry_hash([u.as_tuple() for u in regs]) == registry_hash(regs)
    assert consensus.commit_digest(fields_tuple(commit)) == commit_digest(
        commit, chain.chain_id, consensus.address
    )


def test_commit_digest__bound_to_chain_and_contract(four_validator_system, chain):
    commit = Commit(1, os.urandom(32), os.urandom(32), os.urandom(32), 0)
    address = four_validator_system.consensus.address
    digest = commit_digest(commit, chain.chain_id, address)
    assert digest != commit_digest(commit, chain.chain_id + 1, address)
    assert digest != commit_digest(commit, chain.chain_id, "0x" + "11" * 20)


def test_quorum__matches_python(four_validator_system):
    for total in (1, 2, 3, 4, 7, 100, 10**22 + 7, 2**200):
        assert four_validator_system.consensus.quorum(total) == quorum(total)
