"""Who is staked, for which role: the Staking contract's ``is_active``, answered from a cache.

A router asks ``view(address, role)`` on paths that must not wait (a node's hello, every mesh
summary), so the answer always comes from memory. An address it has not seen is answered
"unstaked" and looked up in the background. The view follows the Staking contract's events:
each poll (every ``follow_s``) reads the logs of the blocks since the last one and re-reads the
addresses they name, so new stake, unstaking, slashing and blacklisting show within a poll of
their block; a change of a role's minimum re-reads everyone. A sweep re-reads every tracked
address every ``refresh_s`` seconds, the safety net for reorganisations and missed logs. Every
read is pinned to a block, and an answer from an older block than the one held is ignored, so a
slow read never undoes a newer one. Subscribers hear of each change. While the chain does not
answer, the last view stands.

Memory and RPC are bounded whatever peers claim: at most ``max_tracked`` entries (the least
recently asked evicted first, except those ``hold`` pins, such as connected nodes) and at most
``max_pending`` lookups queued, taken at ``lookups_per_s``. The queue has two lanes, served in
order: known stake (addresses read staked before, named by a Staking event the follower read, or
on the static allow-list; at most ``max_tracked`` such addresses are remembered) ahead of
never-seen addresses, which cost a flood nothing to make up. A key beyond the full queue takes
the place of the newest never-seen one if it is known stake or urgent (a new connection), and is
dropped otherwise, to be asked again the next time it comes up; a flood of never-seen addresses
can thus only displace never-seen addresses. A held key (a connected node) that is displaced or
finds no room is parked, never forgotten, and queued as room frees; parked keys are held keys,
bounded by the router's connections.
"""

import itertools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import requests
from eth_utils import (
    function_signature_to_4byte_selector,
    to_canonical_address,
    to_checksum_address,
)
from prometheus_client import Counter

from offchain.chain.cached_view import EVERYONE, Block, CachedView, Changes
from offchain.chain.client import DEFAULT_ABI_DIR, DEFAULT_DEPLOYMENTS_DIR, ChainClient, ChainError
from offchain.chain.identity import RoleCheck
from offchain.crypto.hashing import keccak

logger = logging.getLogger(__name__)

Key = tuple[str, int]  # (checksummed address, role flags)
# Called with (address, role, staked) when the view's answer for that pair changes.
StakeChange = Callable[[str, int, bool], None]

IS_ACTIVE = "is_active(address,uint256)"
IS_ACTIVE_SELECTOR = function_signature_to_4byte_selector(IS_ACTIVE)
# Calls per JSON-RPC batch: public endpoints commonly cap batches at 100.
RPC_BATCH = 100
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
    """``Staking.is_active`` over JSON-RPC batches; blocking, so run it in a worker thread.

    Calls are encoded by hand rather than through web3's contract objects, whose CPU cost per
    call would make a sweep of thousands of addresses hold the router's CPU (and the GIL) for
    seconds; encoded here and batched, a call costs about a hundredth of that
    (docs/decisions.md).
    """

    def __init__(
        self,
        url: str,
        staking: str,
        timeout_s: float = 5.0,
        topics: Mapping[str, bool] | None = None,
    ) -> None:
        self.url = url
        self.staking = staking
        self.timeout_s = timeout_s
        # Event topic (0x hex) -> whether it changes everyone (else just the account it names).
        self.topics = dict(topics or {})
        self._local = threading.local()  # a requests.Session per thread: they are not shared
        self._ids = itertools.count(1)

    def _post(self, body: object) -> object:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            reply = session.post(self.url, json=body, timeout=self.timeout_s)
            return reply.json()
        except (requests.RequestException, ValueError) as exc:
            raise ChainError(f"no answer from {self.url}: {type(exc).__name__}") from exc

    def _result(self, method: str, params: list) -> object:
        reply = self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        )
        if not isinstance(reply, dict) or "result" not in reply:
            raise ChainError(f"{method} from {self.url}: {reply!r:.200}")
        return reply["result"]

    def chain_id(self) -> int:
        """Return the endpoint's chain id."""
        return _quantity(self._result("eth_chainId", []))

    def head(self) -> int:
        """Return the number of the newest block."""
        return _quantity(self._result("eth_blockNumber", []))

    def block(self, number: int | None = None) -> Block:
        """Return the number and hash of block ``number`` (None: the newest)."""
        tag = "latest" if number is None else hex(number)
        block = self._result("eth_getBlockByNumber", [tag, False])
        if not isinstance(block, dict) or not isinstance(block.get("hash"), str):
            raise ChainError(f"eth_getBlockByNumber({tag}) answered {block!r:.200}")
        return _quantity(block.get("number")), block["hash"]

    def changes(self, first: int, last: int) -> Changes:
        """Return what the Staking logs of blocks ``first`` to ``last`` say to re-read."""
        if not self.topics:
            raise ChainError("this reader was made without the Staking events")
        logs = self._result(
            "eth_getLogs",
            [
                {
                    "address": self.staking,
                    "fromBlock": hex(first),
                    "toBlock": hex(last),
                    "topics": [sorted(self.topics)],
                }
            ],
        )
        if not isinstance(logs, list):
            raise ChainError(f"eth_getLogs answered {logs!r:.200}")
        addresses: set[str] = set()
        for log in logs:
            topics = log.get("topics") if isinstance(log, dict) else None
            if not topics or topics[0] not in self.topics:
                raise ChainError(f"eth_getLogs answered a log not asked for: {log!r:.200}")
            if self.topics[topics[0]]:
                return EVERYONE
            if len(topics) < 2 or not isinstance(topics[1], str) or len(topics[1]) != 66:
                raise ChainError(f"a Staking log without its account: {log!r:.200}")
            addresses.add(to_checksum_address("0x" + topics[1][-40:]))
        return Changes(frozenset(addresses))

    def is_active(self, keys: Sequence[Key], block: int | None = None) -> list[bool]:
        """Return ``Staking.is_active(address, role)`` for each key at ``block``.

        With no block, at the newest one (which may differ between batches).
        """
        at = "latest" if block is None else hex(block)
        out: list[bool] = []
        for start in range(0, len(keys), RPC_BATCH):
            chunk = keys[start : start + RPC_BATCH]
            calls = [
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "eth_call",
                    "params": [{"to": self.staking, "data": _is_active_data(*key)}, at],
                }
                for i, key in enumerate(chunk)
            ]
            replies = self._post(calls)
            if not isinstance(replies, list) or len(replies) != len(chunk):
                raise ChainError(f"batch of {len(chunk)} calls answered with {replies!r:.200}")
            by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
            for i in range(len(chunk)):
                result = by_id.get(i, {}).get("result")
                # A bool is one 32-byte word, 0 or 1; anything else (an error, or "0x" from an
                # address without code) means the record does not name this chain's Staking.
                if result not in (_WORD_FALSE, _WORD_TRUE):
                    raise ChainError(f"is_active answered {by_id.get(i)!r:.200}")
                out.append(result == _WORD_TRUE)
        return out


def _quantity(value: object) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ChainError(f"expected a hex quantity, got {value!r:.100}")
    return int(value, 16)


_WORD_FALSE = "0x" + "00" * 32
_WORD_TRUE = "0x" + "00" * 31 + "01"


def _is_active_data(address: str, role: int) -> str:
    return (
        "0x"
        + (
            IS_ACTIVE_SELECTOR
            + bytes(12)
            + to_canonical_address(address)
            + role.to_bytes(32, "big")
        ).hex()
    )


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
    given), the record is missing or for another chain, or its Staking ABI lacks ``is_active``.
    """
    if deployment.endswith(".json"):
        deployments_dir, deployment = Path(deployment).parent, Path(deployment).stem
    probe = StakingReader(url, "", timeout_s)
    try:
        actual = probe.chain_id()
    except ChainError as exc:
        raise ChainError(f"cannot read stake: {exc}") from exc
    if chain_id is not None and actual != chain_id:
        raise ChainError(f"{url} is chain {actual}, but chain {chain_id} is configured")
    staking = ChainClient(url, deployment, deployments_dir, abi_dir)["Staking"]
    abi = {entry.get("name"): entry for entry in staking.abi if entry.get("type") == "function"}
    inputs = [i["type"] for i in abi.get("is_active", {}).get("inputs", [])]
    if inputs != ["address", "uint256"]:
        raise ChainError(f"the Staking ABI in {abi_dir} has no {IS_ACTIVE}")
    return StakingReader(url, staking.address, timeout_s, event_topics(staking.abi))


def event_topics(abi: Sequence[Mapping]) -> dict[str, bool]:
    """Return, per topic of a Staking event that changes ``is_active``, whether for everyone.

    If not for everyone, it changes it for the account it names in its first, indexed, field.
    """
    events = {entry["name"]: entry for entry in abi if entry.get("type") == "event"}
    topics: dict[str, bool] = {}
    for name in (*ACCOUNT_EVENTS, *EVERYONE_EVENTS):
        inputs = events.get(name, {}).get("inputs")
        if not inputs:
            raise ChainError(f"the Staking ABI has no event {name}")
        names_account = inputs[0]["type"] == "address" and inputs[0].get("indexed")
        if name in ACCOUNT_EVENTS and not names_account:
            raise ChainError(f"the Staking event {name} does not index its account first")
        signature = f"{name}({','.join(i['type'] for i in inputs)})"
        topics["0x" + keccak(signature.encode()).hex()] = name in EVERYONE_EVENTS
    return topics


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
