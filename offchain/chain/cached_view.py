"""A cache of contract reads that follows the contracts' events: the core of the chain views.

Routers ask the chain on paths that must not wait (a node's hello, a mesh summary, every
request), so a ``CachedView`` answers from memory. A key it has not read is answered with its
absent value (unstaked, no socket, an empty escrow), counted as a miss, and looked up in the
background; ``settle`` waits for the lookup where waiting a moment is fine. The view follows the
contracts' events: each poll (every ``follow_s``) reads the logs of the blocks since the last one
and re-reads the keys they name, so a change shows within a poll of its block; an event that
changes every key of a kind (a new minimum stake) re-reads everyone. A sweep re-reads every
tracked key every ``refresh_s`` seconds, the safety net for reorganisations and missed logs.
Every read is pinned to a block, and an answer from an older block than the one held is
ignored, so a slow read never undoes a newer one. Subscribers hear of each change. While the
chain does not answer, the last view stands.

Memory and RPC are bounded whatever peers claim: at most ``max_tracked`` entries (the least
recently asked evicted first, except those ``hold`` pins, such as connected nodes) and at most
``max_pending`` lookups queued, taken at ``lookups_per_s``. The queue has two lanes, served in
order: known keys (read as present before, named by an event the follower read; at most
``max_tracked`` such subjects are remembered) ahead of never-seen keys, which cost a flood
nothing to make up. A key beyond the full queue takes the place of the newest never-seen one if
it is known or urgent (a new connection), and is dropped otherwise, to be asked again the next
time it comes up; a flood of never-seen keys can thus only displace never-seen keys. A held key
that is displaced or finds no room is parked, never forgotten, and queued as room frees; parked
keys are held keys, bounded by the router's connections.

A view is a subclass that says what a key's subject is (what events name), which answers make a
key known, and what the absent answer is; its ``ViewSource`` reads the chain.
"""

import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import trio
from prometheus_client import Counter

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Block = tuple[int, str]  # (number, hash)
# Which read an answer comes from: (epoch, block). The epoch goes up when the chain's head goes
# back (a reorganisation or a reset devnet), so answers read on the abandoned blocks lose.
Version = tuple[int, int]
# Keys per lookup read: public endpoints commonly cap JSON-RPC batches at 100 calls.
LOOKUP_BATCH = 100
# A poll that would cover more blocks than this (after an outage) sweeps instead: public
# endpoints cap the range of one eth_getLogs.
MAX_LOG_SPAN = 1_000


@dataclass(frozen=True)
class Changes:
    """What the logs of a range of blocks say to re-read: the subjects they name, or everyone."""

    subjects: frozenset = frozenset()
    everyone: bool = False


EVERYONE = Changes(everyone=True)


class ViewSource(Protocol[K, V]):
    """Where a ``CachedView`` reads the chain; blocking calls, run in worker threads."""

    def head(self) -> int:
        """Return the number of the newest block."""
        ...

    def block(self, number: int | None = None) -> Block:
        """Return the number and hash of block ``number`` (None: the newest)."""
        ...

    def read(self, keys: Sequence[K], block: int | None = None) -> list[V]:
        """Return the answer for each key at ``block`` (None: the newest)."""
        ...

    def changes(self, first: int, last: int) -> Changes:
        """Return what the logs of blocks ``first`` to ``last`` say to re-read."""
        ...


class LookupQueue(Generic[K]):
    """Keys to look up in two lanes, known ahead of never-seen; iterated in that order."""

    def __init__(self) -> None:
        self._known: OrderedDict[K, None] = OrderedDict()
        self._unknown: OrderedDict[K, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)

    def __contains__(self, key: object) -> bool:
        return key in self._known or key in self._unknown

    def __iter__(self) -> Iterator[K]:
        return itertools.chain(self._known, self._unknown)

    def add(self, key: K, known: bool, urgent: bool) -> None:
        """Queue ``key`` in its lane (at the front if urgent); a known key leaves the other."""
        lane = self._known if known else self._unknown
        if known:
            self._unknown.pop(key, None)
        elif key in self._known:
            lane = self._known  # stays known once queued as such
        lane[key] = lane.get(key)
        if urgent:
            lane.move_to_end(key, last=False)

    def discard(self, key: K) -> None:
        """Remove ``key`` if queued."""
        self._known.pop(key, None)
        self._unknown.pop(key, None)

    def newest_unknown(self) -> K | None:
        """Return the newest never-seen key (the last of its lane), or None."""
        return next(reversed(self._unknown), None)


class CachedView(Generic[K, V]):
    """Answers for keys of a ``ViewSource``, from memory; call ``run`` in a nursery.

    ``name`` prefixes the error counter's reasons (``<name>-chain-error``, ``-lookup-dropped``,
    ``-untracked``) and the log lines, written to ``log``. ``follow_s`` None reads no events
    (the sweep alone sees changes).
    """

    def __init__(
        self,
        source: ViewSource,
        *,
        name: str,
        log: logging.Logger,
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
        self._name = name
        self._log = log
        self.refresh_s = refresh_s
        self.follow_s = follow_s
        self.max_tracked = max_tracked
        self.max_pending = max_pending
        self.lookups_per_s = lookups_per_s
        self._errors = errors
        self._status: dict[K, V] = {}  # every tracked key
        self._version: dict[K, Version] = {}  # which read each tracked answer comes from
        self._epoch = 0
        # The follower sees every change after this read (its first poll's head, or the head
        # when it found a reorganisation); an answer read before it may have missed one.
        self._fresh_from: Version | None = None
        self._sweep_now = trio.Event()
        self._lru: OrderedDict[K, None] = OrderedDict()  # tracked and not held, oldest first
        self._held: dict[K, int] = {}
        self._pending: LookupQueue[K] = LookupQueue()  # known first, each lane urgent in front
        self._parked: OrderedDict[K, None] = OrderedDict()  # held keys waiting for room
        self._named: OrderedDict[Hashable, None] = OrderedDict()  # known subjects, newest last
        self._waiters: dict[K, trio.Event] = {}
        self._kick = trio.Event()
        self._subscribers: list[Callable[[K, V], None]] = []
        self._limiter = trio.CapacityLimiter(3)  # a sweep, a lookup and a poll at a time
        self.down_since: float | None = None
        self.dropped = 0
        self.hits = 0  # answers from memory
        self.misses = 0  # keys asked before they were read, answered absent

    # ------------------------------------------------------------------ what a view defines

    def subject(self, key: K) -> Hashable:
        """Return what an event names to change ``key`` (by default, the key itself)."""
        return key

    def absent(self, key: K) -> V:
        """Return the answer for a key not read yet."""
        raise NotImplementedError

    def present(self, key: K, value: V) -> bool:
        """Return whether ``value`` makes ``key``'s subject known (served ahead of a flood)."""
        return value != self.absent(key)

    def read_keys(self, keys: Sequence[K], block: int) -> list[V]:
        """Return the source's answers for ``keys`` at ``block``; blocking (a worker thread)."""
        return self._source.read(keys, block)

    def valid(self, key: K) -> bool:
        """Return whether ``key`` can be read (a checksummed address, a token id in range).

        Checked before a key is queued, so one malformed key never fails a whole batch.
        """
        return True

    def quiet(self, key: K) -> bool:
        """Return whether changes of ``key`` are not told to subscribers (fixed answers)."""
        return False

    # ------------------------------------------------------------------ the cache

    def __len__(self) -> int:
        return len(self._status)

    @property
    def hit_rate(self) -> float | None:
        """Return the share of answers that came from memory (None before any was asked)."""
        asked = self.hits + self.misses
        return self.hits / asked if asked else None

    def get(self, key: K) -> V:
        """Return the answer for ``key`` now; never waits (a miss is looked up behind)."""
        value = self._status.get(key, _MISSING)
        if value is _MISSING:
            self.misses += 1
            self._queue(key)
            return self.absent(key)
        self.hits += 1
        if key in self._lru:
            self._lru.move_to_end(key)
        return value

    def has(self, key: K) -> bool:
        """Return whether the chain has been read for ``key``."""
        return key in self._status

    def known_key(self, key: K) -> bool:
        """Return whether ``key`` is known: its subject named by an event or read present."""
        return self.subject(key) in self._named

    def subscribe_keys(self, callback: Callable[[K, V], None]) -> None:
        """Call ``callback(key, answer)`` whenever an answer changes.

        A key not read counts as absent, so the first read that finds it present is a change.
        """
        self._subscribers.append(callback)

    def hold_key(self, key: K) -> None:
        """Keep ``key`` tracked (never evicted) until as many ``release_key`` calls."""
        self._held[key] = self._held.get(key, 0) + 1
        self._lru.pop(key, None)
        if key not in self._status:
            self._queue(key, urgent=True)

    def release_key(self, key: K) -> None:
        """Undo one ``hold_key``; the key is then evicted in its turn like any other."""
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

    async def settle_key(self, key: K) -> V:
        """Return the answer once the chain has been read for ``key`` (at once if it was).

        For a new connection or a first request, where waiting a moment is fine; callers bound
        it with a timeout (while the chain does not answer, it waits). A key dropped from a
        full queue is answered absent at once.
        """
        if key not in self._status:
            self._queue(key, urgent=True)
            if key in self._pending or key in self._parked:
                await self._waiters.setdefault(key, trio.Event()).wait()
        return self._status.get(key, self.absent(key))

    async def run(self) -> None:
        """Look up new keys, follow the chain's events and sweep, until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._lookups)
            nursery.start_soon(self._sweeps)
            if self.follow_s is not None:
                nursery.start_soon(self._follow)

    # ------------------------------------------------------------------ internals

    def _queue(self, key: K, urgent: bool = False) -> None:
        if key not in self._pending and not self.valid(key):
            self._count("invalid-key")
            return  # answered absent, never read
        known = self.known_key(key)
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

    def _refuse(self, key: K) -> None:
        """Count a lookup that found no room; park it if held, else let its waiter go."""
        self.dropped += 1
        self._count("lookup-dropped")
        if key in self._held:
            self._parked[key] = None
        else:
            self._wake(key)

    def _unpark(self) -> None:
        """Queue parked keys, known first, while the queue has room."""
        for key in sorted(self._parked, key=lambda k: not self.known_key(k)):
            if len(self._pending) >= self.max_pending:
                return
            del self._parked[key]
            if key in self._held and key not in self._status:
                self._pending.add(key, self.known_key(key), urgent=False)

    def _remember(self, subject: Hashable) -> None:
        """Note ``subject`` as known (at most ``max_tracked``, the oldest forgotten)."""
        self._named[subject] = None
        self._named.move_to_end(subject)
        while len(self._named) > self.max_tracked:
            self._named.popitem(last=False)

    async def _lookups(self) -> None:
        retry_s = min(1.0, self.refresh_s)
        while True:
            self._unpark()
            if not self._pending:
                self._kick = trio.Event()
                await self._kick.wait()
            keys = list(itertools.islice(self._pending, LOOKUP_BATCH))
            read = await self._read_at_head(keys)
            if read is None:
                await trio.sleep(retry_s)
                continue
            version, results = read
            stale = []
            for key, value in zip(keys, results, strict=True):
                if key in self._pending:  # else dropped while the read was out
                    self._pending.discard(key)
                    self._apply(key, value, version, lookup=True)
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
            for key, value in zip(keys, results, strict=True):
                self._apply(key, value, version, lookup=False)

    async def _follow(self) -> None:
        """Re-read the keys whose subjects the logs name, block range by block range."""
        assert self.follow_s is not None
        cursor: Block | None = None  # the last block whose logs were taken
        while True:
            polled = await self._call(self._poll, cursor)
            if polled is not None:
                head, changes, reorganised = polled
                if reorganised:
                    self._epoch += 1  # reads on the abandoned blocks must lose to newer ones
                    self._log.info(
                        "%s view: block %d is no longer %s (now head %d): reading all again",
                        self._name,
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
                elif await self._reread(changes.subjects, head[0]):
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

    async def _reread(self, subjects: frozenset, head: int) -> bool:
        """Re-read every key tracked or pending for ``subjects`` at ``head``.

        Return False if the chain did not answer.
        """
        for subject in subjects:
            self._remember(subject)  # named by an event: served first from now on
        keys = [k for k in self._status if self.subject(k) in subjects]
        keys += [k for k in self._pending if self.subject(k) in subjects and k not in self._status]
        if not keys:
            return True
        version = (self._epoch, head)
        results = await self._call(self.read_keys, keys, head)
        if results is None:
            return False
        for key, value in zip(keys, results, strict=True):
            # A pending key read here is tracked now; its own lookup, if still out, is older.
            self._apply(key, value, version, lookup=True)
        return True

    async def _read_at_head(self, keys: list[K]) -> tuple[Version, list[V]] | None:
        """Return the chain's answers for ``keys`` at its newest block, with their version."""
        epoch = self._epoch
        read = await self._call(self._at_head, keys)
        return None if read is None else ((epoch, read[0]), read[1])

    def _at_head(self, keys: list[K]) -> tuple[int, list[V]]:
        head = self._source.head()
        return head, self.read_keys(keys, head)

    async def _call(self, fn: Callable[..., Any], *args: object) -> Any:
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
            self._count("chain-error")
            if self.down_since is None:
                self.down_since = trio.current_time()
                self._log.warning(
                    "%s view: chain read failed (%s); keeping the last view of %d entries",
                    self._name,
                    exc,
                    len(self._status),
                )
            return None
        # Only a read that started after the outage was seen says the chain is back.
        if self.down_since is not None and started >= self.down_since:
            self._log.info(
                "%s view: chain answers again after %.1f s",
                self._name,
                trio.current_time() - self.down_since,
            )
            self.down_since = None
        return results

    def _apply(self, key: K, value: V, version: Version, lookup: bool) -> None:
        tracked = key in self._status
        if not tracked:
            if not lookup:
                return  # evicted while the sweep was out
            if not self._track(key):
                return
        elif version < self._version.get(key, version):
            return  # read before the answer we hold
        old = self._status.get(key, self.absent(key)) if tracked else self.absent(key)
        self._status[key] = value
        self._version[key] = version
        if self.present(key, value):
            self._remember(self.subject(key))
        if old != value and not self.quiet(key):
            for callback in self._subscribers:
                callback(key, value)

    def _track(self, key: K) -> bool:
        """Start tracking ``key``, evicting the least recently asked; False if all are held.

        A held key is tracked even then: held keys are bounded by the router's connections.
        """
        self._evict(room=1)
        if key not in self._held:
            if len(self._status) >= self.max_tracked:
                self._count("untracked")
                return False
            self._lru[key] = None
        return True

    def _evict(self, room: int = 0) -> None:
        while len(self._status) + room > self.max_tracked and self._lru:
            key, _ = self._lru.popitem(last=False)
            self._status.pop(key, None)
            self._version.pop(key, None)

    def _wake(self, key: K) -> None:
        waiter = self._waiters.pop(key, None)
        if waiter is not None:
            waiter.set()

    def _count(self, reason: str) -> None:
        if self._errors is not None:
            self._errors.labels(reason=f"{self._name}-{reason}").inc()


_MISSING: Any = object()
