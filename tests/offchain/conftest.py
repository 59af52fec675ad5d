"""Fixtures shared by the off-chain tests."""

import pytest

from tests.offchain.chain.chainnet import StakingChain, staking_chain


@pytest.fixture(scope="session")
def chain(tmp_path_factory) -> StakingChain:
    """One anvil with the contracts deployed, for every test that reads stake from a chain."""
    with staking_chain(tmp_path_factory.mktemp("staking-chain")) as deployed:
        yield deployed
