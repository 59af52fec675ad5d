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
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import requests
import trio
from eth_utils import (
    function_signature_to_4byte_selector,
    to_canonical_address,
    to_checksum_address,
)
from prometheus_client import Counter

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
# A poll that would cover more blocks than this (after an outage) sweeps instead: public
# endpoints cap the range of one eth_getLogs.
MAX_LOG_SPAN = 1_000


@dataclass(frozen=True)
class Changes:
    """What the Staking logs of a range of blocks say to re-read."""

    addresses: frozenset[str] = frozenset()  # checksummed
    everyone: bool = False


EVERYONE = Changes(everyone=True)
Block = tuple[int, str]  # (number, hash)


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


class LookupQueue:
    """Keys to look up in two lanes, known stake ahead of never-seen; iterated in that order."""

    def __init__(self) -> None:
        self._known: OrderedDict[Key, None] = OrderedDict()
        self._unknown: OrderedDict[Key, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)

    def __contains__(self, key: object) -> bool:
        return key in self._known or key in self._unknown

    def __iter__(self) -> Iterator[Key]:
        return itertools.chain(self._known, self._unknown)

    def add(self, key: Key, known: bool, urgent: bool) -> None:
        """Queue ``key`` in its lane (at the front if urgent); a known key leaves the other."""
        lane = self._known if known else self._unknown
        if known:
            self._unknown.pop(key, None)
        elif key in self._known:
            lane = self._known  # stays known stake once queued as such
        lane[key] = lane.get(key)
        if urgent:
            lane.move_to_end(key, last=False)

    def discard(self, key: Key) -> None:
        """Remove ``key`` if queued."""
        self._known.pop(key, None)
        self._unknown.pop(key, None)

    def newest_unknown(self) -> Key | None:
        """Return the newest never-seen key (the last of its lane), or None."""
        return next(reversed(self._unknown), None)


# Which read an answer comes from: (epoch, block). The epoch goes up when the chain's head goes
# back (a reorganisation or a reset devnet), so answers read on the abandoned blocks lose.
Version = tuple[int, int]


class StakeView:
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
        if refresh_s <= 0 or lookups_per_s <= 0 or max_tracked < 1 or max_pending < 1:
            raise ValueError("refresh_s, lookups_per_s, max_tracked, max_pending must be positive")
        if follow_s is not None and follow_s <= 0:
            raise ValueError("follow_s must be positive (or None: no events)")
        self._source = source
        self._static: RoleCheck = static or (lambda _address, _role: False)
        self.refresh_s = refresh_s
        self.follow_s = follow_s
        self.max_tracked = max_tracked
        self.max_pending = max_pending
        self.lookups_per_s = lookups_per_s
        self._errors = errors
        self._status: dict[Key, bool] = {}  # every tracked key
        self._version: dict[Key, Version] = {}  # which read each tracked answer comes from
        self._epoch = 0
        # The follower sees every change after this read (its first poll's head, or the head
        # when it found a reorganisation); an answer read before it may have missed one.
        self._fresh_from: Version | None = None
        self._sweep_now = trio.Event()
        self._lru: OrderedDict[Key, None] = OrderedDict()  # tracked and not held, oldest first
        self._held: dict[Key, int] = {}
        self._pending = LookupQueue()  # to look up: known stake first, each lane first in front
        self._parked: OrderedDict[Key, None] = OrderedDict()  # held keys waiting for room
        self._staked_before: OrderedDict[str, None] = OrderedDict()  # known stake, newest last
        self._waiters: dict[Key, trio.Event] = {}
        self._kick = trio.Event()
        self._subscribers: list[StakeChange] = []
        self._limiter = trio.CapacityLimiter(3)  # a sweep, a lookup and a poll at a time
        self.down_since: float | None = None
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._status)

    def __call__(self, address: str, role: int) -> bool:
        """Return whether ``address`` is staked for ``role`` now; never waits."""
        if self._static(address, role):
            return True
        key = (address, role)
        active = self._status.get(key)
        if active is None:
            self._queue(key)
            return False
        if key in self._lru:
            self._lru.move_to_end(key)
        return active

    def known(self, address: str, role: int) -> bool:
        """Return whether the chain has been read for ``(address, role)``."""
        return (address, role) in self._status

    def known_stake(self, address: str, role: int) -> bool:
        """Return whether ``address`` has stake on record: seen staked, logged, or allow-listed."""
        return (
            address in self._staked_before
            or self._status.get((address, role)) is True
            or self._static(address, role)
        )

    def subscribe(self, callback: StakeChange) -> None:
        """Call ``callback(address, role, staked)`` whenever an answer changes.

        An unknown key counts as unstaked, so the first read that finds stake is a change.
        """
        self._subscribers.append(callback)

    def hold(self, address: str, role: int) -> None:
        """Keep ``(address, role)`` tracked (never evicted) until as many ``release`` calls."""
        key = (address, role)
        self._held[key] = self._held.get(key, 0) + 1
        self._lru.pop(key, None)
        if key not in self._status:
            self._queue(key, urgent=True)

    def release(self, address: str, role: int) -> None:
        """Undo one ``hold``; the key is then evicted in its turn like any other."""
        key = (address, role)
        count = self._held.get(key, 0) - 1
        if count > 0:
            self._held[key] = count
            return
        self._held.pop(key, None)
        if self._parked.pop(key, None) is not None:
            self._wake(key)  # no longer held: a parked key is not read
        if key in self._status:
            self._lru[key] = None
            self._evict()

    async def settle(self, address: str, role: int) -> bool:
        """Return the answer once the chain has been read for the key (at once if it was).

        For a new connection, where waiting a moment is fine; callers bound it with a timeout
        (while the chain does not answer, it waits).
        """
        key = (address, role)
        if not self._static(address, role) and key not in self._status:
            self._queue(key, urgent=True)
            await self._waiters.setdefault(key, trio.Event()).wait()
        return self(address, role)

    async def run(self) -> None:
        """Look up new keys, follow the chain's events and sweep, until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._lookups)
            nursery.start_soon(self._sweeps)
            if self.follow_s is not None:
                nursery.start_soon(self._follow)

    # ------------------------------------------------------------------ internals

    def _queue(self, key: Key, urgent: bool = False) -> None:
        known = self.known_stake(*key)
        if key in self._pending:
            self._pending.add(key, known, urgent)  # to the known lane, or the front if urgent
            return
        if len(self._pending) >= self.max_pending:
            victim = self._pending.newest_unknown() if known or urgent else None
            if victim is None:
                self._refuse(key)
                return
            self._pending.discard(victim)
            self._refuse(victim)
        self._parked.pop(key, None)
        self._pending.add(key, known, urgent)
        self._kick.set()

    def _refuse(self, key: Key) -> None:
        """Count a lookup that found no room; park it if held, else let its waiter go."""
        self.dropped += 1
        self._count("stake-lookup-dropped")
        if key in self._held:
            self._parked[key] = None
        else:
            self._wake(key)

    def _unpark(self) -> None:
        """Queue parked keys, known stake first, while the queue has room."""
        for key in sorted(self._parked, key=lambda k: not self.known_stake(*k)):
            if len(self._pending) >= self.max_pending:
                return
            del self._parked[key]
            if key in self._held and key not in self._status:
                self._pending.add(key, self.known_stake(*key), urgent=False)

    def _remember(self, address: str) -> None:
        """Note ``address`` as known stake (at most ``max_tracked``, the oldest forgotten)."""
        self._staked_before[address] = None
        self._staked_before.move_to_end(address)
        while len(self._staked_before) > self.max_tracked:
            self._staked_before.popitem(last=False)

    async def _lookups(self) -> None:
        retry_s = min(1.0, self.refresh_s)
        while True:
            self._unpark()
            if not self._pending:
                self._kick = trio.Event()
                await self._kick.wait()
            keys = list(itertools.islice(self._pending, RPC_BATCH))
            read = await self._read_at_head(keys)
            if read is None:
                await trio.sleep(retry_s)
                continue
            version, results = read
            stale = []
            for key, active in zip(keys, results, strict=True):
                if key in self._pending:  # else dropped while the read was out
                    self._pending.discard(key)
                    self._apply(key, active, version, lookup=True)
                    if self._fresh_from and self._version.get(key, version) < self._fresh_from:
                        stale.append(key)  # read before the follower began: read it again
                self._wake(key)
            for key in stale:
                self._queue(key)
            await trio.sleep(len(keys) / self.lookups_per_s)  # the lookup rate limit

    async def _sweeps(self) -> None:
        retry_s = min(1.0, self.refresh_s)
        while True:
            with trio.move_on_after(self.refresh_s):
                await self._sweep_now.wait()
            asked, self._sweep_now = self._sweep_now.is_set(), trio.Event()
            keys = list(self._status)
            read = await self._read_at_head(keys) if keys else None
            if read is None:
                if keys and asked:  # the chain did not answer a sweep events asked for
                    await trio.sleep(retry_s)
                    self._sweep_now.set()
                continue  # nothing tracked, or the chain did not answer: the view stands
            version, results = read
            for key, active in zip(keys, results, strict=True):
                self._apply(key, active, version, lookup=False)

    async def _follow(self) -> None:
        """Re-read the keys whose address the Staking logs name, block range by block range."""
        assert self.follow_s is not None
        cursor: Block | None = None  # the last block whose logs were taken
        while True:
            polled = await self._call(self._poll, cursor)
            if polled is not None:
                head, changes, reorganised = polled
                if reorganised:
                    self._epoch += 1  # reads on the abandoned blocks must lose to newer ones
                    logger.info(
                        "stake view: block %d is no longer %s (now head %d): reading all again",
                        *(cursor or (0, "")),
                        head[0],
                    )
                if reorganised or cursor is None:
                    fresh = self._fresh_from = (self._epoch, head[0])
                    if any(v < fresh for v in self._version.values()):
                        self._sweep_now.set()  # answers read before the follower began
                if changes.everyone:
                    self._sweep_now.set()
                    cursor = head
                elif await self._reread(changes.addresses, head[0]):
                    cursor = head
            await trio.sleep(self.follow_s)

    def _poll(self, cursor: Block | None) -> tuple[Block, Changes, bool]:
        """Return the head, what the logs since ``cursor`` say, and whether it was reorganised.

        Reorganised: ``cursor`` is no longer on the chain. Runs in a worker thread.
        """
        head = self._source.block()
        if cursor is None or head == cursor:
            return head, Changes(), False  # at start: lookups read before it are read again
        if head[0] < cursor[0] or self._source.block(cursor[0]) != cursor:
            return head, EVERYONE, True  # a reorganisation or a reset chain
        if head[0] - cursor[0] > MAX_LOG_SPAN:
            return head, EVERYONE, False  # a long outage: endpoints cap eth_getLogs ranges
        return head, self._source.changes(cursor[0] + 1, head[0]), False

    async def _reread(self, addresses: frozenset[str], head: int) -> bool:
        """Re-read every key tracked or pending for ``addresses`` at ``head``.

        Return False if the chain did not answer.
        """
        for address in addresses:
            self._remember(address)  # named by a Staking event: served first from now on
        keys = [k for k in self._status if k[0] in addresses]
        keys += [k for k in self._pending if k[0] in addresses and k not in self._status]
        if not keys:
            return True
        version = (self._epoch, head)
        results = await self._call(self._source.is_active, keys, head)
        if results is None:
            return False
        for key, active in zip(keys, results, strict=True):
            # A pending key read here is tracked now; its own lookup, if still out, is older.
            self._apply(key, active, version, lookup=True)
        return True

    async def _read_at_head(self, keys: list[Key]) -> tuple[Version, list[bool]] | None:
        """Return the chain's answers for ``keys`` at its newest block, with their version."""
        epoch = self._epoch
        read = await self._call(self._at_head, keys)
        return None if read is None else ((epoch, read[0]), read[1])

    def _at_head(self, keys: list[Key]) -> tuple[int, list[bool]]:
        head = self._source.head()
        return head, self._source.is_active(keys, head)

    async def _call(self, fn: Callable, *args: object):  # type: ignore[no-untyped-def]
        """Return ``fn(*args)``, run in a worker thread.

        Return None if the chain did not answer (counted, and logged once per outage).
        """
        started = trio.current_time()
        try:
            # Abandoned on cancellation: a router stopping never waits for an RPC timeout.
            results = await trio.to_thread.run_sync(
                fn, *args, limiter=self._limiter, abandon_on_cancel=True
            )
        except Exception as exc:  # noqa: BLE001 - any failure to read keeps the last view
            self._count("stake-chain-error")
            if self.down_since is None:
                self.down_since = trio.current_time()
                logger.warning(
                    "stake view: chain read failed (%s); keeping the last view of %d entries",
                    exc,
                    len(self._status),
                )
            return None
        # Only a read that started after the outage was seen says the chain is back.
        if self.down_since is not None and started >= self.down_since:
            logger.info(
                "stake view: chain answers again after %.1f s",
                trio.current_time() - self.down_since,
            )
            self.down_since = None
        return results

    def _apply(self, key: Key, active: bool, version: Version, lookup: bool) -> None:
        old = self._status.get(key)
        if old is None:
            if not lookup:
                return  # evicted while the sweep was out
            if not self._track(key):
                return
        elif version < self._version.get(key, version):
            return  # read before the answer we hold
        self._status[key] = active
        self._version[key] = version
        if active:
            self._remember(key[0])
        if bool(old) != active and not self._static(*key):
            for callback in self._subscribers:
                callback(key[0], key[1], active)

    def _track(self, key: Key) -> bool:
        """Start tracking ``key``, evicting the least recently asked; False if all are held.

        A held key is tracked even then: held keys are bounded by the router's connections.
        """
        self._evict(room=1)
        if key not in self._held:
            if len(self._status) >= self.max_tracked:
                self._count("stake-untracked")
                return False
            self._lru[key] = None
        self._status[key] = False
        return True

    def _evict(self, room: int = 0) -> None:
        while len(self._status) + room > self.max_tracked and self._lru:
            key, _ = self._lru.popitem(last=False)
            del self._status[key]
            self._version.pop(key, None)

    def _wake(self, key: Key) -> None:
        waiter = self._waiters.pop(key, None)
        if waiter is not None:
            waiter.set()

    def _count(self, reason: str) -> None:
        if self._errors is not None:
            self._errors.labels(reason=reason).inc()
