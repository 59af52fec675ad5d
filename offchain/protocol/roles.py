"""The staking roles, defined once for the Python side.

The Staking contract's role flags (DESIGN.md section 4). An address may hold several roles;
``Staking.is_active(address, role)`` says whether it holds ``role`` with enough stake. The
contracts spell the same values as constants; tests/contracts/test_roles_agree.py checks that
they agree.
"""

ROLE_VALIDATOR = 1
ROLE_ROUTER = 2
ROLE_COMPUTE = 4
ROLES = (ROLE_VALIDATOR, ROLE_ROUTER, ROLE_COMPUTE)
