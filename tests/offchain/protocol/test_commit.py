"""The commit digest, registry hash and signer bitmaps (pure; the on-chain parity test is in
tests/contracts/consensus/test_commit_digest.py)."""

import dataclasses

import pytest

from offchain.protocol.commit import (
    Commit,
    RegistryUpdate,
    commit_digest,
    registry_hash,
    signers_bitmap,
)

CONTRACT = "0x" + "ab" * 20
BASE = Commit(1, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, 7, (), 9)


@pytest.mark.parametrize(
    "change",
    [
        {"height": 2},
        {"batch_root": b"\x09" * 32},
        {"billing_root": b"\x09" * 32},
        {"rewards_root": b"\x09" * 32},
        {"rewards_total": 8},
        {"billed_total": 10},
        {"parent_signers": 0b111},
        {"registry_updates": (RegistryUpdate(CONTRACT, 1, 2, False),)},
    ],
)
def test_commit_digest__every_field_is_covered(change):
    assert commit_digest(dataclasses.replace(BASE, **change), 1, CONTRACT) != commit_digest(
        BASE, 1, CONTRACT
    )


def test_commit_digest__bound_to_chain_and_contract_but_deterministic():
    digest = commit_digest(BASE, 1, CONTRACT)
    assert digest == commit_digest(BASE, 1, CONTRACT)
    assert len(digest) == 32
    assert digest != commit_digest(BASE, 2, CONTRACT)
    assert digest != commit_digest(BASE, 1, "0x" + "cd" * 20)


def test_registry_hash__order_and_flags_matter():
    a = RegistryUpdate(CONTRACT, 1, 2, False)
    b = RegistryUpdate("0x" + "cd" * 20, 3, 4, True)
    assert registry_hash([a, b]) != registry_hash([b, a])
    assert registry_hash([a]) != registry_hash([dataclasses.replace(a, blacklisted=True)])
    assert registry_hash([]) == registry_hash(())


def test_signers_bitmap__sets_one_bit_per_index():
    assert signers_bitmap([]) == 0
    assert signers_bitmap([0, 2, 3]) == 0b1101
    assert signers_bitmap({127}) == 1 << 127
    with pytest.raises(ValueError, match="non-negative"):
        signers_bitmap([-1])
