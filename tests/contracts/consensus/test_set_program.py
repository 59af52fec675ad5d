"""The program at the start of every validator-set data contract (offchain/chain/set_program.py).

A commit's quorum check rests on it: the power it reports for the non-signers decides whether a
bitmap is a quorum, and the key it returns is what the seal is checked against. So it is run
here against a Python reference, on sets of 1 to 128 members and on bitmaps from none to all.
"""

import random
import re
from pathlib import Path

import ape
import pytest

from offchain.chain.set_program import G1ADD, LISTING, code
from offchain.crypto import bls
from tests.contracts.rewards.helpers import bitmap_of, bls_key, set_data

REPO = Path(__file__).resolve().parents[3]


def test_set_program__contract_constant_matches_the_listing():
    source = (REPO / "contracts" / "modules" / "validator_set.vy").read_text()
    constant = re.search(r'SET_PROGRAM: constant\(Bytes\[(\d+)\]\) = x"([0-9a-f]+)"', source)
    size = re.search(r"PROGRAM_SIZE: constant\(uint256\) = (\d+)", source)
    assert bytes.fromhex(constant[2]) == code()
    assert int(constant[1]) == int(size[1]) == len(code())


@pytest.fixture(scope="module")
def harness(project, accounts):
    return accounts[0].deploy(project.ValidatorSetHarness)


def _members(accounts, count: int) -> list[tuple[str, int]]:
    # Distinct powers, up to uint96's largest, so a wrong entry cannot go unnoticed.
    return [
        (str(accounts[i % len(accounts)]), 2**96 - 1 - i * 10**21 if i % 3 else 7 + i)
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def sets(harness, accounts):
    """Epoch e holds a set of SIZES[e] members whose keys are bls_key(100 * e + 1 + i)."""
    out = {}
    for epoch, size in enumerate(SIZES):
        members = _members(accounts, size)
        harness.store(epoch, set_data(harness, members, 100 * epoch + 1), sender=accounts[0])
        out[size] = (epoch, members)
    return out


SIZES = (1, 2, 5, 33, 128)


def _expected(epoch: int, members, bitmap: int) -> tuple[bytes, int, int, int]:
    key = b"\x00" * 128
    for i in range(len(members)):
        if bitmap >> i & 1:
            key = bls.add_g1(key, bls_key(100 * epoch + 1 + i))
    total = sum(power for _, power in members)
    missing = sum(power for i, (_, power) in enumerate(members) if not bitmap >> i & 1)
    return key, total, len(members), missing


def _bitmaps(size: int) -> list[int]:
    full = (1 << size) - 1
    rng = random.Random(size)
    bitmaps = {0, full, full ^ 1, full ^ (1 << (size - 1)), 1, 1 << (size - 1)}
    bitmaps.add(int("01" * size, 2) & full)
    quorum = 2 * size // 3 + 1
    for _ in range(6):
        bitmaps.add(bitmap_of(rng.sample(range(size), quorum)))
        bitmaps.add(rng.getrandbits(size))
    return sorted(bitmaps)


@pytest.mark.parametrize("size", SIZES)
def test_set_program__answers_as_the_reference(harness, sets, size):
    epoch, members = sets[size]
    for bitmap in _bitmaps(size):
        key, total, count, missing = harness.signers(epoch, bitmap)
        assert (bytes(key), total, count, missing) == _expected(epoch, members, bitmap), bitmap


def test_set_program__ignores_bits_beyond_the_set(harness, sets):
    epoch, members = sets[5]
    assert harness.signers(epoch, 0b10110 | 1 << 5 | 1 << 200) == harness.signers(epoch, 0b10110)


def test_set_program__header_and_members_read_back_after_it(harness, sets):
    epoch, members = sets[33]
    key, total, count = harness.header(epoch)
    assert (bytes(key), total, count) == _expected(epoch, members, (1 << 33) - 1)[:3]
    for index in (0, 17, 32):
        power, account = harness.member_power(epoch, index)
        assert (power, account) == (members[index][1], members[index][0])


def test_set_program__refuses_value(harness, sets, accounts):
    epoch, _ = sets[5]
    with ape.reverts():
        accounts[1].transfer(harness.validator_set(epoch), 1)


def test_set_program__reads_only_its_code_and_calls_only_g1add():
    ops = {instruction.split()[0] for instruction, _ in LISTING if not instruction.endswith(":")}
    pushes = {op for op in ops if op.startswith("PUSH")}
    assert ops - pushes == {
        "CALLVALUE", "CALLDATALOAD", "CODECOPY", "MLOAD", "MSTORE", "STATICCALL", "JUMPI",
        "JUMPDEST", "RETURN", "REVERT", "ADD", "MUL", "SUB", "ISZERO", "AND", "XOR", "NOT",
        "SHL", "SHR", "POP", "DUP1", "DUP2", "DUP3", "SWAP1", "SWAP2",
    }  # fmt: skip
    calls = [i for i, (instruction, _) in enumerate(LISTING) if instruction == "STATICCALL"]
    assert len(calls) == 1 and LISTING[calls[0] - 2][0] == f"PUSH1 {G1ADD}"
