"""A real anvil with the project's contracts deployed, and the stake operations tests need."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from offchain.chain.anvil import Anvil, start_anvil
from offchain.chain.client import ChainClient, devnet_account
from offchain.chain.deploy import deploy_contracts
from offchain.protocol.roles import ROLE_COMPUTE


@dataclass
class StakingChain:
    """anvil, the deployed contracts, and where their deployment record lies."""

    anvil: Anvil
    client: ChainClient
    record: Path

    @property
    def staking(self):
        return self.client["Staking"]

    def account(self, key: bytes | None = None) -> LocalAccount:
        """Return an account (``key``'s, else a new one) with ETH for gas."""
        account = Account.from_key(key) if key is not None else Account.create()
        self.client.w3.provider.make_request(
            "anvil_setBalance", [account.address, hex(10 * 10**18)]
        )
        return account

    def stake(self, account: LocalAccount, role: int = ROLE_COMPUTE) -> None:
        """Give ``account`` the role's minimum stake in EMC and stake it for ``role``."""
        amount = self.staking.functions.min_stake(role).call()
        token = self.client["EMCToken"]
        self.client.transact(devnet_account(0), token.functions.transfer(account.address, amount))
        self.client.transact(account, token.functions.approve(self.staking.address, amount))
        self.client.transact(account, self.staking.functions.stake(role, amount))

    def unstake(self, account: LocalAccount) -> None:
        """Start unbonding all of ``account``'s stake, which drops every role at once."""
        amount = self.staking.functions.staked(account.address).call()
        self.client.transact(account, self.staking.functions.request_unstake(amount))

    def slash(self, address: str, amount: int) -> None:
        """Slash ``address`` as the slasher (ComputeConsensus) does."""
        self._as_slasher(self.staking.functions.slash(address, amount, "test"))

    def blacklist(self, address: str, blacklisted: bool = True) -> None:
        """Blacklist ``address`` (or lift it) as the consensus contract does."""
        self._as_slasher(self.staking.functions.set_blacklisted(address, blacklisted))

    def set_min_stake(self, role: int, amount: int) -> None:
        """Set ``role``'s minimum stake as the Staking contract's owner."""
        owner = self.staking.functions.owner().call()
        self._as(owner, self.staking.functions.set_min_stake(role, amount))

    def snapshot(self) -> str:
        """Return an id to ``revert`` the chain to its state now (its head too)."""
        return self.client.w3.provider.make_request("evm_snapshot", [])["result"]

    def revert(self, snapshot: str) -> None:
        reply = self.client.w3.provider.make_request("evm_revert", [snapshot])
        assert reply["result"] is True, reply

    def _as_slasher(self, call) -> None:
        self._as(self.staking.functions.slasher().call(), call)

    def _as(self, sender: str, call) -> None:
        """Send ``call`` from ``sender``, impersonated on anvil."""
        w3 = self.client.w3
        w3.provider.make_request("anvil_impersonateAccount", [sender])
        w3.provider.make_request("anvil_setBalance", [sender, hex(10**18)])
        tx_hash = call.transact({"from": sender})
        assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
        w3.provider.make_request("anvil_stopImpersonatingAccount", [sender])


@contextmanager
def staking_chain(workdir: Path) -> Iterator[StakingChain]:
    """Start anvil, deploy the contracts fresh (record and ABIs under ``workdir``), yield."""
    deployments, abi = workdir / "deployments", workdir / "abi"
    with start_anvil() as anvil:
        deploy_contracts(anvil.url, fresh=True, deployments_dir=deployments, abi_dir=abi)
        client = ChainClient(anvil.url, deployments_dir=deployments, abi_dir=abi)
        yield StakingChain(anvil, client, deployments / "local.json")
