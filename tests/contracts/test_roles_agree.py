"""The staking role flags have one definition on each side, and the two sides agree."""

import re
from pathlib import Path

from offchain.protocol import roles

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
ROLE_CONSTANT = re.compile(
    r"^(ROLE_[A-Z]+):\s*(?:public\()?constant\(uint256\)\)?\s*=\s*(\d+)", re.M
)


def test_every_contract_role_constant__equals_the_python_definition():
    found = {}
    for source in sorted(CONTRACTS.rglob("*.vy")):
        for name, value in ROLE_CONSTANT.findall(source.read_text()):
            found[(source.name, name)] = int(value)
            assert hasattr(roles, name), f"{source.name} defines {name}, unknown to Python"
            assert getattr(roles, name) == int(value), f"{source.name}: {name} = {value}"
    # Staking defines every role; the others define the ones they check.
    assert {name for (file, name) in found if file == "Staking.vy"} == {
        "ROLE_VALIDATOR",
        "ROLE_ROUTER",
        "ROLE_COMPUTE",
    }
    assert roles.ROLES == (roles.ROLE_VALIDATOR, roles.ROLE_ROUTER, roles.ROLE_COMPUTE)


def test_staking_contract__public_role_flags__equal_the_python_definition(staking):
    assert staking.ROLE_VALIDATOR() == roles.ROLE_VALIDATOR
    assert staking.ROLE_ROUTER() == roles.ROLE_ROUTER
    assert staking.ROLE_COMPUTE() == roles.ROLE_COMPUTE
