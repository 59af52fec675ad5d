"""ValidatorSetHarness: the set data contract reads back what was stored (claims rely on it)."""

from tests.contracts.rewards.helpers import aggregate_key


def test_store__members_and_header_read_back(vset_harness, store_set, validators):
    members = list(zip(validators, [5, 6, 7, 2**96 - 1], strict=True))
    store_set(3, members)
    for index, (account, power) in enumerate(members):
        assert vset_harness.member_power(3, index) == (power, account.address)
    key, total, count = vset_harness.header(3)
    assert (bytes(key), total, count) == (
        aggregate_key((1, 2, 3, 4)),
        sum(p for _, p in members),
        4,
    )
