"""The routers' ``ChainView``: sockets, nodes and escrow from the contracts, answered from a cache.

A router checks every request against the socket (holder, ERC-4907 user and its expiry,
workload, price, issuer, serving terms), the socket issuer's and the serving node's registry
entries (registered, compute stake, blacklist, workloads) and the user's escrow (deposits,
withdrawal request, spending applied). ``MarketView`` answers those from memory, never waiting:
a key not read yet is answered absent (no socket, no registry entry, an empty escrow), counted
as a miss and looked up in the background, and ``ready`` waits, bounded, for the keys one
request needs.
It follows ComputeSocket's, Staking's and ComputeMarket's events, so a mint, a transfer, a new
or revoked user, a deposit, a withdrawal request or a proven spend shows within a poll of its
block; it is a ``CachedView`` (offchain/chain/cached_view.py), the same core as the stake view.

What the chain cannot say, the view does not invent (docs/decisions.md):

* ComputeMarket stores only the latest billing root, not each user's cumulative spent in it, so
  ``proven_spent`` is the spent last proven against a root and applied (``spent_settled``);
* nonces are not on the chain: the router's record of used nonces answers ``nonce_used``.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import trio
from eth_utils import is_checksum_address, to_checksum_address
from prometheus_client import Counter

from offchain.chain.cached_view import Block, CachedView, Changes
from offchain.chain.chain_client import (
    DEFAULT_ABI_DIR,
    DEFAULT_DEPLOYMENTS_DIR,
    ChainClient,
    ChainError,
)
from offchain.chain.rpc import AbiFunction, Call, EventKeys, Rpc, Watch
from offchain.protocol.invocation.types import EscrowInfo, NodeInfo, SocketInfo
from offchain.protocol.roles import ROLE_COMPUTE

logger = logging.getLogger(__name__)

SOCKET, NODE, ESCROW = "socket", "node", "escrow"
MarketKey = tuple[str, Any]  # (SOCKET, token id) | (NODE, address) | (ESCROW, address)
NO_ESCROW = EscrowInfo(balance=0)
CONTRACTS = ("ComputeSocket", "Staking", "ComputeMarket")


def socket_key(socket_id: int) -> MarketKey:
    """Return the view's key for socket ``socket_id``."""
    return (SOCKET, socket_id)


def node_key(address: str) -> MarketKey:
    """Return the view's key for the registry entry of ``address`` (checksummed)."""
    return (NODE, address)


def escrow_key(user: str) -> MarketKey:
    """Return the view's key for the escrow of ``user`` (checksummed)."""
    return (ESCROW, user)


def _watches(addresses: Mapping[str, str]) -> list[Watch]:
    """Return the events that change what the view holds, and the key each names."""
    sockets, staking, market = (addresses[name] for name in CONTRACTS)
    watches = [Watch(sockets, event, field, socket_key) for event, field in (
        ("Transfer", "token_id"),  # a new holder (mint and burn included)
        ("UpdateUser", "tokenId"),  # a new, revoked or cleared user
        ("SocketMinted", "token_id"),
        ("SocketBurned", "token_id"),
    )]  # fmt: skip
    watches += [Watch(staking, event, field, node_key) for event, field in (
        ("Staked", "account"),
        ("UnstakeRequested", "account"),
        ("Withdrawn", "account"),
        ("Slashed", "account"),
        ("NodeBlacklisted", "node"),
        ("NodeDeclared", "node"),
    )]  # fmt: skip
    watches.append(Watch(staking, "MinStakeChanged", None))  # every node's stake
    watches += [Watch(market, event, "user", escrow_key) for event in (
        "Deposited", "WithdrawRequested", "Withdrawn", "SpentProven",
    )]  # fmt: skip
    return watches


class MarketReader:
    """Reads sockets, registry entries and escrows at a block, in JSON-RPC batches; blocking."""

    def __init__(
        self,
        rpc: Rpc,
        addresses: Mapping[str, str],
        abis: Mapping[str, Sequence[Mapping]],
    ) -> None:
        self.rpc = rpc
        self.addresses = dict(addresses)
        sockets, staking, market = (abis[addresses[name]] for name in CONTRACTS)
        self._socket = AbiFunction.of(sockets, "sockets", ["uint256"])
        self._terms = AbiFunction.of(sockets, "serving_terms", ["uint256"])
        self._owner = AbiFunction.of(sockets, "ownerOf", ["uint256"])
        self._user = AbiFunction.of(sockets, "userOf", ["uint256"])
        self._user_expires = AbiFunction.of(sockets, "userExpires", ["uint256"])
        self._node = AbiFunction.of(staking, "nodes", ["address"])
        self._is_active = AbiFunction.of(staking, "is_active", ["address", "uint256"])
        self._escrow = AbiFunction.of(market, "escrow", ["address"])
        self._settled = AbiFunction.of(market, "spent_settled", ["address"])
        self._requested = AbiFunction.of(market, "withdrawal_requested", ["address"])
        self.events = EventKeys(_watches(addresses), abis)

    def head(self) -> int:
        """Return the number of the newest block."""
        return self.rpc.head()

    def block(self, number: int | None = None) -> Block:
        """Return the number and hash of block ``number`` (None: the newest)."""
        return self.rpc.block(number)

    def changes(self, first: int, last: int) -> Changes:
        """Return the keys the watched logs of blocks ``first`` to ``last`` name."""
        return self.events.changes(
            self.rpc.logs(self.events.addresses, self.events.topics, first, last)
        )

    def read(self, keys: Sequence[MarketKey], block: int | None = None) -> list[Any]:
        """Return each key's answer at ``block`` (None: the newest)."""
        calls: list[Call] = []
        for kind, ident in keys:
            calls += self._calls(kind, ident)
        answers = iter(self.rpc.calls(calls, block))
        return [self._answer(kind, ident, answers) for kind, ident in keys]

    def _calls(self, kind: str, ident: Any) -> list[Call]:
        sockets = self.addresses["ComputeSocket"]
        staking = self.addresses["Staking"]
        market = self.addresses["ComputeMarket"]
        if kind == SOCKET:
            fns = (self._socket, self._terms, self._owner, self._user, self._user_expires)
            return [Call(sockets, fn, (ident,)) for fn in fns]
        if kind == NODE:
            return [
                Call(staking, self._node, (ident,)),
                Call(staking, self._is_active, (ident, ROLE_COMPUTE)),
            ]
        if kind == ESCROW:
            fns = (self._escrow, self._settled, self._requested)
            return [Call(market, fn, (ident,)) for fn in fns]
        raise ValueError(f"not a market view key: {(kind, ident)!r}")

    def _answer(self, kind: str, ident: Any, answers: Any) -> Any:
        return _ANSWERS[kind](ident, answers)


def _required(answer: tuple | None, what: str) -> tuple:
    if answer is None:
        raise ChainError(f"{what} reverted")
    return answer


def _socket_answer(socket_id: int, answers: Any) -> SocketInfo | None:
    record, terms, owner, user, user_expires = (next(answers) for _ in range(5))
    workload, _capacity, price, issuer, expiry, _budget = _required(record, "sockets")[0]
    if int(issuer, 16) == 0:
        return None  # never minted, or burned: the record is cleared
    open_serving, stake_required = _required(terms, "serving_terms")[0]
    holder = _required(owner, "ownerOf of a minted socket")[0]
    delegate = _required(user, "userOf")[0]
    return SocketInfo(  # eth_abi decodes addresses in lower case; bindings carry checksums
        holder=to_checksum_address(holder),
        workload=workload,
        price=price,
        issuer=to_checksum_address(issuer),
        expiry=expiry,
        user=None if int(delegate, 16) == 0 else to_checksum_address(delegate),
        user_expires=_required(user_expires, "userExpires")[0],
        open_serving=open_serving,  # fixed at mint (SocketMinted carries them too)
        stake_required=stake_required,
    )


def _node_answer(_address: str, answers: Any) -> NodeInfo | None:
    entry, active = next(answers), next(answers)
    _power, _reputation, blacklisted, gpu_model, _memory, _storage, workloads = _required(
        entry, "nodes"
    )[0]
    staked = _required(active, "is_active")[0]
    if not (workloads or gpu_model or blacklisted or staked):
        return None  # never declared, staked nor blacklisted: no registry entry
    return NodeInfo(staked=staked, blacklisted=blacklisted, workloads=frozenset(workloads))


def _escrow_answer(_user: str, answers: Any) -> EscrowInfo:
    balance, settled, requested = (_required(next(answers), "escrow")[0] for _ in range(3))
    return EscrowInfo(
        balance=balance,
        applied_spent=settled,
        proven_spent=settled,  # the chain holds the root, not each user's spent in it
        withdrawal_requested=requested,
    )


_ANSWERS: dict[str, Callable[[Any, Any], Any]] = {
    SOCKET: _socket_answer,
    NODE: _node_answer,
    ESCROW: _escrow_answer,
}


def connect_market(
    url: str,
    deployment: str = "local",
    chain_id: int | None = None,
    deployments_dir: Path = DEFAULT_DEPLOYMENTS_DIR,
    abi_dir: Path = DEFAULT_ABI_DIR,
    timeout_s: float = 5.0,
) -> MarketReader:
    """Check the endpoint and the deployment record; return a reader of their contracts.

    ``deployment`` is a record name in ``deployments_dir`` or a path to a ``.json`` record.
    Raises ``ChainError`` if the endpoint does not answer, is not chain ``chain_id`` (when
    given), the record is missing or for another chain, or an ABI lacks what the view reads.
    """
    if deployment.endswith(".json"):
        deployments_dir, deployment = Path(deployment).parent, Path(deployment).stem
    rpc = Rpc(url, timeout_s)
    try:
        actual = rpc.chain_id()
    except ChainError as exc:
        raise ChainError(f"cannot read the market: {exc}") from exc
    if chain_id is not None and actual != chain_id:
        raise ChainError(f"{url} is chain {actual}, but chain {chain_id} is configured")
    client = ChainClient(url, deployment, deployments_dir, abi_dir)
    addresses = {name: client[name].address for name in CONTRACTS}
    abis = {client[name].address: client[name].abi for name in CONTRACTS}
    return MarketReader(rpc, addresses, abis)


class MarketView(CachedView[MarketKey, Any]):
    """A cached ``ChainView`` over a ``MarketReader``; call ``run`` in a nursery.

    ``nonce_used`` is the router's record of the nonces users have spent (the chain keeps
    none). The other parameters are the ``CachedView``'s.
    """

    def __init__(
        self,
        source: MarketReader,
        nonce_used: Callable[[str, int], bool],
        *,
        refresh_s: float = 60.0,
        follow_s: float | None = 1.0,
        max_tracked: int = 65_536,
        max_pending: int = 4_096,
        lookups_per_s: float = 1_000.0,
        errors: Counter | None = None,
    ) -> None:
        super().__init__(
            source,
            name="market",
            log=logger,
            refresh_s=refresh_s,
            follow_s=follow_s,
            max_tracked=max_tracked,
            max_pending=max_pending,
            lookups_per_s=lookups_per_s,
            errors=errors,
        )
        self._nonce_used = nonce_used

    def absent(self, key: MarketKey) -> Any:
        """Return the answer for a key not read yet: no socket, no entry, an empty escrow."""
        return NO_ESCROW if key[0] == ESCROW else None

    def valid(self, key: MarketKey) -> bool:
        """Return whether ``key`` names a token id in uint256 or a checksummed address."""
        kind, ident = key
        if kind == SOCKET:
            return type(ident) is int and 0 <= ident < 1 << 256
        return kind in (NODE, ESCROW) and isinstance(ident, str) and is_checksum_address(ident)

    # ------------------------------------------------------------------ ChainView

    def socket(self, socket_id: int) -> SocketInfo | None:
        """Return socket ``socket_id`` as last read, or None (also while not read yet)."""
        return self.get(socket_key(socket_id))

    def node(self, address: str) -> NodeInfo | None:
        """Return the registry entry of ``address`` as last read, or None."""
        return self.get(node_key(address))

    def escrow(self, user: str) -> EscrowInfo:
        """Return ``user``'s escrow as last read (all zero while not read yet)."""
        return self.get(escrow_key(user))

    def nonce_used(self, user: str, nonce: int) -> bool:
        """Return whether ``user`` has already used ``nonce``, from the router's record."""
        return self._nonce_used(user, nonce)

    # ------------------------------------------------------------------ waiting, bounded

    async def ready(self, keys: Sequence[MarketKey], timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until every key has been read; return whether all were.

        The keys are queued at once, so their lookups share one read.
        """
        pending = [key for key in keys if not self.has(key)]
        if not pending:  # the common case: no cancel scope, no checkpoint
            return True
        for key in pending:
            self._queue(key, urgent=True)
        with trio.move_on_after(timeout_s):
            for key in pending:
                await self.settle_key(key)
        return all(self.has(key) for key in keys)

    async def ready_for(self, socket_id: int, user: str, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until what a request is checked against is read.

        That is the socket ``socket_id``, its issuer's registry entry and ``user``'s escrow.
        Return whether all were read.
        """
        deadline = trio.current_time() + timeout_s
        key = socket_key(socket_id)
        if not await self.ready([key, escrow_key(user)], timeout_s):
            return False
        socket = self._status.get(key)
        if socket is None:
            return True  # read: there is no such socket
        return await self.ready([node_key(socket.issuer)], deadline - trio.current_time())


class MarketSnapshot:
    """A ``ChainView`` read from the chain at one block, each key once: what a settler checks.

    Validators (and the devnet, which settles as they will) check records against the chain
    itself, not a router's cache: every answer is the contracts' state at ``block`` (the newest
    when built), read through ``reader`` on first use and kept, since that block does not change.
    ``nonce_used`` is the settler's record of the nonces it has billed (the chain keeps none).
    """

    def __init__(
        self,
        reader: MarketReader,
        nonce_used: Callable[[str, int], bool],
        block: int | None = None,
    ) -> None:
        self.reader = reader
        self.block = reader.head() if block is None else block
        self._nonce_used = nonce_used
        self._answers: dict[MarketKey, Any] = {}

    def _get(self, key: MarketKey) -> Any:
        if key not in self._answers:
            self._answers[key] = self.reader.read([key], self.block)[0]
        return self._answers[key]

    def socket(self, socket_id: int) -> SocketInfo | None:
        """Return socket ``socket_id`` at the block, or None when it does not exist."""
        return self._get(socket_key(socket_id))

    def node(self, address: str) -> NodeInfo | None:
        """Return the registry entry of ``address`` at the block, or None when it has none."""
        return self._get(node_key(to_checksum_address(address)))

    def escrow(self, user: str) -> EscrowInfo:
        """Return ``user``'s escrow at the block."""
        return self._get(escrow_key(to_checksum_address(user)))

    def nonce_used(self, user: str, nonce: int) -> bool:
        """Return whether ``user``'s ``nonce`` is billed already, from the settler's record."""
        return self._nonce_used(user, nonce)
