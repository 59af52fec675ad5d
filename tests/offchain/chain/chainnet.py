"""A real anvil with the project's contracts deployed, and the operations tests need on it.

Stake (stake, unstake, slash, blacklist, minimums), the node registry, sockets (mint, set or
revoke a user, transfer) and escrow (deposit, request a withdrawal).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from offchain.chain.anvil import Anvil, start_anvil
from offchain.chain.chain_client import ChainClient, devnet_account
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

    @property
    def sockets(self):
        return self.client["ComputeSocket"]

    @property
    def market(self):
        return self.client["ComputeMarket"]

    def declare(self, node: LocalAccount, workloads: tuple[str, ...]) -> None:
        """Declare ``workloads`` in the node registry for ``node``."""
        self.client.transact(
            node, self.staking.functions.declare_node("test-gpu", 1024, 10, list(workloads))
        )

    def compute_node(self, workloads: tuple[str, ...] = ("matmul-f32",)) -> LocalAccount:
        """Return a new account staked for compute that declared ``workloads``."""
        node = self.account()
        self.stake(node, ROLE_COMPUTE)
        self.declare(node, workloads)
        return node

    def mint_socket(
        self,
        node: LocalAccount,
        holder: str,
        workload: str = "matmul-f32",
        price: int = 10**15,
        lifetime_s: int = 86_400,
        terms: tuple[bool, bool] | None = None,
    ) -> int:
        """Mint a socket issued by ``node`` (staked, declared) to ``holder``; return its id.

        ``terms`` is ``(open_serving, stake_required)``; None mints without them (issuer-only).
        """
        expiry = self.client.w3.eth.get_block("latest")["timestamp"] + lifetime_s
        socket_id = self.sockets.functions.next_token_id().call()
        args = (holder, workload, 100, price, expiry, 1_000, "ipfs://s", *(terms or ()))
        self.client.transact(node, self.sockets.functions.mint(*args))
        return socket_id

    def set_user(self, holder: LocalAccount, socket_id: int, user: str, expires: int) -> None:
        """Let ``user`` use the socket until ``expires`` (the zero address: revoke)."""
        self.client.transact(holder, self.sockets.functions.setUser(socket_id, user, expires))

    def transfer_socket(self, holder: LocalAccount, to: str, socket_id: int) -> None:
        """Transfer socket ``socket_id`` from ``holder`` to ``to``."""
        self.client.transact(
            holder, self.sockets.functions.transferFrom(holder.address, to, socket_id)
        )

    def deposit(self, user: LocalAccount, amount: int) -> None:
        """Give ``user`` ``amount`` EMC and deposit it into its ComputeMarket escrow."""
        token = self.client["EMCToken"]
        self.client.transact(devnet_account(0), token.functions.transfer(user.address, amount))
        self.client.transact(user, token.functions.approve(self.market.address, amount))
        self.client.transact(user, self.market.functions.deposit(amount))

    def request_withdraw(self, user: LocalAccount, amount: int) -> None:
        """Ask to withdraw ``amount`` of ``user``'s escrow."""
        self.client.transact(user, self.market.functions.request_withdraw(amount))

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
