"""The voting-power quorum floor(2P/3)+1 and the fault bound it leaves."""

import pytest

from offchain.protocol.quorum import max_faulty, quorum


@pytest.mark.parametrize(
    ("total", "expected"), [(1, 1), (3, 3), (4, 3), (7, 5), (10, 7), (100, 67)]
)
def test_quorum__floor_two_thirds_plus_one(total, expected):
    assert quorum(total) == expected


def test_quorum__two_quorums_always_share_more_than_the_faulty_power():
    for total in range(1, 200):
        assert 2 * quorum(total) - total > max_faulty(total)


def test_quorum__non_positive_power__raises():
    with pytest.raises(ValueError):
        quorum(0)
