"""A market on a real anvil for the invocation tests: a staked node, its socket, a user's escrow.

``ContractView`` is a ``ChainView`` that reads the deployed contracts on every call, without a
cache: it stands in for the router's followed market view in these tests only, where a few
dozen reads are cheap and every change on the chain (a revoked delegate) shows at once.
"""

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from offchain.chain.chain_client import devnet_account
from offchain.protocol.invocation import EscrowInfo, InvocationDomain, NodeInfo, SocketInfo
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER
from tests.offchain.chain.chainnet import StakingChain

ZERO = "0x" + "00" * 20
WORKLOAD = "echo"
PRICE = 10**15
EXPIRY_S = 30 * 86_400


class ContractView:
    """The ``ChainView`` of the deployed Staking, ComputeSocket and ComputeMarket, read live."""

    def __init__(self, chain: StakingChain) -> None:
        self.client = chain.client
        self.staking = chain.client["Staking"]
        self.sockets = chain.client["ComputeSocket"]
        self.market = chain.client["ComputeMarket"]
        self.reads = 0

    def socket(self, socket_id: int) -> SocketInfo | None:
        """Return socket ``socket_id``, or None when it does not exist."""
        self.reads += 1
        workload, _capacity, price, node, expiry, _per_epoch = self.sockets.functions.sockets(
            socket_id
        ).call()
        if node == ZERO:
            return None
        user = self.sockets.functions.userOf(socket_id).call()
        open_serving, stake_required = self.sockets.functions.serving_terms(socket_id).call()
        return SocketInfo(
            holder=self.sockets.functions.ownerOf(socket_id).call(),
            workload=workload,
            price=price,
            issuer=node,
            expiry=expiry,
            user=None if user == ZERO else user,
            user_expires=self.sockets.functions.userExpires(socket_id).call(),
            open_serving=open_serving,
            stake_required=stake_required,
        )

    def node(self, address: str) -> NodeInfo | None:
        """Return ``address``'s registry entry: None unless it declared workloads or is staked."""
        self.reads += 1
        entry = self.staking.functions.nodes(address).call()
        blacklisted, workloads = entry[2], frozenset(entry[6])
        staked = self.staking.functions.is_active(address, ROLE_COMPUTE).call()
        if not workloads and not staked:
            return None
        return NodeInfo(staked=staked, blacklisted=blacklisted, workloads=workloads)

    def escrow(self, user: str) -> EscrowInfo:
        """Return ``user``'s escrow as the market holds it (no billing root proven here)."""
        self.reads += 1
        functions = self.market.functions
        applied = functions.spent_settled(user).call()
        return EscrowInfo(
            balance=functions.escrow(user).call(),
            applied_spent=applied,
            proven_spent=applied,
            withdrawal_requested=functions.withdrawal_requested(user).call(),
        )

    def nonce_used(self, user: str, nonce: int) -> bool:
        """Return False: no commit of these tests has proven a nonce used."""
        return False


@dataclass
class Market:
    """The actors and the socket the invocation tests run on."""

    chain: StakingChain
    domain: InvocationDomain
    node: LocalAccount
    router: LocalAccount
    user: LocalAccount
    delegate: LocalAccount
    stranger: LocalAccount
    socket_id: int

    def deposit(self, account: LocalAccount, amount: int) -> None:
        """Escrow ``amount`` EMC for ``account`` in the market."""
        client = self.chain.client
        token, market = client["EMCToken"], client["ComputeMarket"]
        client.transact(devnet_account(0), token.functions.transfer(account.address, amount))
        client.transact(account, token.functions.approve(market.address, amount))
        client.transact(account, market.functions.deposit(amount))

    def delegate_to(self, account: LocalAccount | None, expires: int = 2**40) -> None:
        """Name ``account`` the socket's ERC-4907 user (None: revoke)."""
        sockets = self.chain.client["ComputeSocket"]
        user = account.address if account is not None else ZERO
        self.chain.client.transact(
            self.user,
            sockets.functions.setUser(self.socket_id, user, 0 if user == ZERO else expires),
        )


def open_market(chain: StakingChain, node_key: bytes, router_key: bytes) -> Market:
    """Stake a node (keyed ``node_key``) and a router, mint the node's socket to a fresh user.

    The user escrows ``3 * PRICE``: three invocations' worth.
    """
    client = chain.client
    node, router = chain.account(node_key), chain.account(router_key)
    chain.stake(node, ROLE_COMPUTE)
    chain.stake(router, ROLE_ROUTER)
    staking, sockets = client["Staking"], client["ComputeSocket"]
    client.transact(node, staking.functions.declare_node("", 1_024, 1, [WORKLOAD]))
    user, delegate, stranger = chain.account(), chain.account(), chain.account()
    block = client.w3.eth.get_block("latest")
    socket_id = sockets.functions.next_token_id().call()
    client.transact(
        node,
        sockets.functions.mint(
            user.address, WORKLOAD, 1, PRICE, block["timestamp"] + EXPIRY_S, 1_000, ""
        ),
    )
    domain = InvocationDomain(client.w3.eth.chain_id, client["ComputeMarket"].address)
    market = Market(chain, domain, node, router, user, delegate, stranger, socket_id)
    market.deposit(user, 3 * PRICE)
    market.deposit(delegate, 3 * PRICE)
    return market
