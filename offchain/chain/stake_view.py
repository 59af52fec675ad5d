"""Who is staked, for which role: the Staking contract's ``is_active``, answered from a cache.

A router asks ``view(address, role)`` on paths that must not wait (a node's hello, every mesh
summary), so the answer always comes from memory. ``StakeView`` is a ``CachedView``
(offchain/chain/cached_view.py: lookups in the background, the event follower, the sweep, the
bounds on memory and RPC, the chain-down handling) whose keys are (address, role) pairs:

* an address it has not seen is answered "unstaked" and looked up behind;
* it follows the Staking events that change ``is_active`` (``Staked``, ``UnstakeRequested``,
  ``Withdrawn``, ``Slashed``, ``NodeBlacklisted`` re-read the address they name;
  ``MinStakeChanged`` re-reads everyone), so new stake, unstaking, slashing and blacklisting
  show within a poll of their block;
* known stake, served ahead of never-seen addresses in the lookup queue, is an address read
  staked before, named by a Staking event, or on the static allow-list, which stays staked
  whatever the chain says;
* subscribers hear ``(address, role, staked)`` on each change; connected nodes are held
  (``hold``/``release``), never evicted.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from eth_utils import function_signature_to_4byte_selector, is_checksum_address
from prometheus_client import Counter

from offchain.chain.cached_view import Block, CachedView, Changes
from offchain.chain.chain_client import (
    DEFAULT_ABI_DIR,
    DEFAULT_DEPLOYMENTS_DIR,
    ChainClient,
    ChainError,
)
from offchain.chain.identity import RoleCheck
from offchain.chain.rpc import AbiFunction, Call, EventKeys, Rpc, Watch

logger = logging.getLogger(__name__)

Key = tuple[str, int]  # (checksummed address, role flags)
# Called with (address, role, staked) when the view's answer for that pair changes.
StakeChange = Callable[[str, int, bool], None]

IS_ACTIVE_SIGNATURE = "is_active(address,uint256)"
IS_ACTIVE = AbiFunction(
    "is_active",
    function_signature_to_4byte_selector(IS_ACTIVE_SIGNATURE),
    ("address", "uint256"),
    ("bool",),
)
# The Staking events that change ``is_active``: those naming one account (indexed, first), and
# the one that changes it for everyone. Every write to the inputs of ``_is_active`` (roles,
# stake, blacklist, minimums) logs one of them.
ACCOUNT_EVENTS = ("Staked", "UnstakeRequested", "Withdrawn", "Slashed", "NodeBlacklisted")
EVERYONE_EVENTS = ("MinStakeChanged",)


class StakeSource(Protocol):
    """Where a ``StakeView`` reads the chain (a ``StakingReader``); blocking calls."""

    def head(self) -> int:
        """Return the number of the newest block."""
        ...

    def block(self, number: int | None = None) -> Block:
        """Return the number and hash of block ``number`` (None: the newest)."""
        ...

    def is_active(self, keys: Sequence[Key], block: int | None = None) -> list[bool]:
        """Return ``is_active`` for each (address, role) at ``block`` (None: the newest)."""
        ...

    def changes(self, first: int, last: int) -> Changes:
        """Return what the Staking logs of blocks ``first`` to ``last`` say to re-read."""
        ...


class StakingReader:
    """``Staking.is_active`` in JSON-RPC batches, and the Staking events that change it.

    Blocking, so run it in a worker thread. Reads go through ``offchain/chain/rpc.py``
    (eth_abi calldata, batches through web3's provider), not web3 contract objects, whose CPU
    cost per call would make a sweep of thousands of addresses hold the router's CPU (and the
    GIL) for seconds (docs/decisions.md).
    """

    def __init__(
        self,
        url: str,
        staking: str,
        timeout_s: float = 5.0,
        events: EventKeys | None = None,
    ) -> None:
        self.rpc = Rpc(url, timeout_s)
        self.staking = staking
        self.events = events

    @property
    def url(self) -> str:
        """Return the endpoint's URL."""
        return self.rpc.url

    @url.setter
    def url(self, url: str) -> None:
        self.rpc = Rpc(url, self.rpc.timeout_s)

    @property
    def timeout_s(self) -> float:
        """Return the timeout of each request, in seconds."""
        return self.rpc.timeout_s

    def chain_id(self) -> int:
        """Return the endpoint's chain id."""
        return self.rpc.chain_id()

    def head(self) -> int:
        """Return the number of the newest block."""
        return self.rpc.head()

    def block(self, number: int | None = None) -> Block:
        """Return the number and hash of block ``number`` (None: the newest)."""
        return self.rpc.block(number)

    def changes(self, first: int, last: int) -> Changes:
        """Return the addresses the Staking logs of blocks ``first`` to ``last`` name."""
        if self.events is None:
            raise ChainError("this reader was made without the Staking events")
        return self.events.changes(
            self.rpc.logs(self.events.addresses, self.events.topics, first, last)
        )

    def is_active(self, keys: Sequence[Key], block: int | None = None) -> list[bool]:
        """Return ``Staking.is_active(address, role)`` for each key at ``block``.

        With no block, at the newest one (which may differ between batches). An answer that is
        not a bool (an error, or nothing from an address without code) means the reader does not
        name this chain's Staking: a ``ChainError``.
        """
        answers = self.rpc.calls([Call(self.staking, IS_ACTIVE, key) for key in keys], block)
        out = []
        for answer in answers:
            if answer is None:
                raise ChainError("is_active answered with a revert")
            out.append(answer[0])
        return out


def connect_staking(
    url: str,
    deployment: str = "local",
    chain_id: int | None = None,
    deployments_dir: Path = DEFAULT_DEPLOYMENTS_DIR,
    abi_dir: Path = DEFAULT_ABI_DIR,
    timeout_s: float = 5.0,
) -> StakingReader:
    """Check the endpoint and the deployment record; return a reader of their Staking contract.

    ``deployment`` is a record name in ``deployments_dir`` or a path to a ``.json`` record.
    Raises ``ChainError`` if the endpoint does not answer, is not chain ``chain_id`` (when
    given), the record is missing or for another chain, or its Staking ABI lacks ``is_active``
    or the events that change it.
    """
    if deployment.endswith(".json"):
        deployments_dir, deployment = Path(deployment).parent, Path(deployment).stem
    try:
        actual = Rpc(url, timeout_s).chain_id()
    except ChainError as exc:
        raise ChainError(f"cannot read stake: {exc}") from exc
    if chain_id is not None and actual != chain_id:
        raise ChainError(f"{url} is chain {actual}, but chain {chain_id} is configured")
    staking = ChainClient(url, deployment, deployments_dir, abi_dir)["Staking"]
    try:
        AbiFunction.of(staking.abi, "is_active", IS_ACTIVE.inputs)
    except ChainError as exc:
        raise ChainError(f"the Staking ABI in {abi_dir} has no {IS_ACTIVE_SIGNATURE}") from exc
    events = staking_events(staking.address, staking.abi)
    return StakingReader(url, staking.address, timeout_s, events)


def staking_events(staking: str, abi: Sequence[Mapping]) -> EventKeys:
    """Return the Staking events that change ``is_active``, each naming its account's address.

    An account event must name the account in its first field, indexed; ``MinStakeChanged``
    changes everyone.
    """
    events = {entry["name"]: entry for entry in abi if entry.get("type") == "event"}
    watches = []
    for name in ACCOUNT_EVENTS:
        inputs = events.get(name, {}).get("inputs")
        if not inputs:
            raise ChainError(f"the Staking ABI has no event {name}")
        if not (inputs[0]["type"] == "address" and inputs[0].get("indexed")):
            raise ChainError(f"the Staking event {name} does not index its account first")
        watches.append(Watch(staking, name, inputs[0]["name"]))
    watches += [Watch(staking, name, None) for name in EVERYONE_EVENTS]
    return EventKeys(watches, {staking: abi})


class StakeView(CachedView[Key, bool]):
    """A cached ``RoleCheck`` over a ``StakeSource`` (a ``StakingReader``).

    ``static`` stays staked whatever the chain says (the config's allow-lists). Addresses are
    the checksummed ones bindings carry. ``follow_s`` None reads no events (the sweep alone
    sees changes). Call ``run`` in a nursery to look up, follow and sweep.
    """

    def __init__(
        self,
        source: StakeSource,
        static: RoleCheck | None = None,
        *,
        refresh_s: float = 60.0,
        follow_s: float | None = 1.0,
        max_tracked: int = 16_384,
        max_pending: int = 1_024,
        lookups_per_s: float = 200.0,
        errors: Counter | None = None,
    ) -> None:
        super().__init__(
            source,
            name="stake",
            log=logger,
            refresh_s=refresh_s,
            follow_s=follow_s,
            max_tracked=max_tracked,
            max_pending=max_pending,
            lookups_per_s=lookups_per_s,
            errors=errors,
        )
        self._stake_source = source
        self._static: RoleCheck = static or (lambda _address, _role: False)

    def subject(self, key: Key) -> str:
        """Return the key's address: what Staking events name."""
        return key[0]

    def absent(self, key: Key) -> bool:
        """Return False: an address not read yet counts as unstaked."""
        return False

    def present(self, key: Key, value: bool) -> bool:
        """Return whether ``value`` is stake: an address read staked is known stake."""
        return value

    def valid(self, key: Key) -> bool:
        """Return whether ``key`` is a checksummed address and a role in uint256."""
        return is_checksum_address(key[0]) and 0 <= key[1] < 1 << 256

    def quiet(self, key: Key) -> bool:
        """Return whether the allow-list fixes ``key``'s answer (its changes are not told)."""
        return self._static(*key)

    def known_key(self, key: Key) -> bool:
        """Return whether ``key``'s address is known stake (``known_stake``)."""
        return self.known_stake(*key)

    def read_keys(self, keys: Sequence[Key], block: int) -> list[bool]:
        """Return ``is_active`` for ``keys`` at ``block``; blocking (a worker thread)."""
        return self._stake_source.is_active(keys, block)

    def __call__(self, address: str, role: int) -> bool:
        """Return whether ``address`` is staked for ``role`` now; never waits."""
        if self._static(address, role):
            return True
        return self.get((address, role))

    def known(self, address: str, role: int) -> bool:
        """Return whether the chain has been read for ``(address, role)``."""
        return self.has((address, role))

    def known_stake(self, address: str, role: int) -> bool:
        """Return whether ``address`` has stake on record: seen staked, logged, or allow-listed."""
        return (
            address in self._named
            or self._status.get((address, role)) is True
            or self._static(address, role)
        )

    def subscribe(self, callback: StakeChange) -> None:
        """Call ``callback(address, role, staked)`` whenever an answer changes.

        An unknown key counts as unstaked, so the first read that finds stake is a change.
        """
        self.subscribe_keys(lambda key, staked: callback(key[0], key[1], staked))

    def hold(self, address: str, role: int) -> None:
        """Keep ``(address, role)`` tracked (never evicted) until as many ``release`` calls."""
        self.hold_key((address, role))

    def release(self, address: str, role: int) -> None:
        """Undo one ``hold``; the key is then evicted in its turn like any other."""
        self.release_key((address, role))

    async def settle(self, address: str, role: int) -> bool:
        """Return the answer once the chain has been read for the key (at once if it was).

        For a new connection, where waiting a moment is fine; callers bound it with a timeout
        (while the chain does not answer, it waits).
        """
        if not self._static(address, role):
            await self.settle_key((address, role))
        return self(address, role)
