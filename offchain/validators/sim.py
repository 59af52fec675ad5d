"""A deterministic, seeded simulator of n IBFT validators over lossy links, in virtual time.

    result = Simulation(n=7, seed=1, behaviours={0: "silent", 3: "equivocate"}).run(heights=3)
    result.nodes[1].decisions[1]        # the value node 1 decided at height 1

Each validator runs the pure state machine of ``offchain.validators.ibft``; the simulator owns
time (a heap of events), the links (delay, jitter, drop, duplication, partitions that start and
heal, and a time of stabilisation after which links stop losing messages) and the named faulty
behaviours. Everything random comes from one ``random.Random(seed)``, so a run is a function of
its arguments.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from offchain.crypto.keys import Keypair, generate_keypair
from offchain.protocol import canonical_cbor
from offchain.protocol import ibft_wire as m
from offchain.validators import ibft
from offchain.validators.seals import seal_scheme as get_seal_scheme

logger = logging.getLogger(__name__)

BEHAVIOURS = (
    "honest",
    "silent",
    "crash",
    "equivocate",
    "bad_signatures",
    "invalid_proposals",
    "spam_future",
    "replay",
    "lossy",
)
# Behaviours whose node runs the protocol as written (a crashed node is correct once restarted).
CORRECT = frozenset({"honest"})
INVALID_PREFIX = b"invalid:"
SPAM_PER_SEND = 3
REPLAY_PER_SEND = 2
REPLAY_MEMORY = 256


class SimulationError(ValueError):
    """A simulation set up with arguments that cannot work."""


@dataclass(frozen=True)
class Partition:
    """Between ``start`` and ``heal``, messages cross no boundary between ``groups``."""

    start: float
    heal: float
    groups: tuple[frozenset[int], ...]

    def separates(self, a: int, b: int, t: float) -> bool:
        """Return whether a message from ``a`` to ``b`` sent at ``t`` is cut."""
        if not self.start <= t < self.heal:
            return False
        return self._group(a) != self._group(b)

    def _group(self, node: int) -> int:
        for i, group in enumerate(self.groups):
            if node in group:
                return i
        return -1


@dataclass(frozen=True)
class Link:
    """One directed link's settings; None keeps the simulation's default."""

    delay: float | None = None
    jitter: float | None = None
    drop: float | None = None
    duplicate: float | None = None


@dataclass
class NodeResult:
    """What one validator did in a run."""

    behaviour: str
    decisions: dict[int, bytes] = field(default_factory=dict)
    decision_times: dict[int, float] = field(default_factory=dict)
    decision_rounds: dict[int, int] = field(default_factory=dict)
    seals: dict[int, set[bytes]] = field(default_factory=dict)
    messages_sent: int = 0
    bytes_sent: int = 0


@dataclass
class SimResult:
    """The outcome of a run: per node results, the virtual time reached, the heights asked."""

    nodes: list[NodeResult]
    time: float
    first_height: int
    heights: int
    events: int

    def correct(self) -> list[int]:
        """Return the indices of validators that ran the protocol as written."""
        return [i for i, node in enumerate(self.nodes) if node.behaviour in CORRECT]

    def conflicts(self, nodes: Iterable[int] | None = None) -> dict[int, set[bytes]]:
        """Return the heights where the given nodes (default: correct) decided different values."""
        chosen = self.correct() if nodes is None else list(nodes)
        values: dict[int, set[bytes]] = {}
        for i in chosen:
            for height, value in self.nodes[i].decisions.items():
                values.setdefault(height, set()).add(value)
        return {h: v for h, v in values.items() if len(v) > 1}

    def all_decided(self, nodes: Iterable[int] | None = None) -> bool:
        """Return whether the given nodes (default: correct) decided every height asked."""
        chosen = self.correct() if nodes is None else list(nodes)
        wanted = range(self.first_height, self.first_height + self.heights)
        return all(h in self.nodes[i].decisions for i in chosen for h in wanted)

    def messages(self) -> int:
        """Return the messages sent by all nodes."""
        return sum(n.messages_sent for n in self.nodes)

    def bytes(self) -> int:
        """Return the bytes sent by all nodes."""
        return sum(n.bytes_sent for n in self.nodes)


@dataclass
class _Node:
    """The simulator's book-keeping for one validator."""

    index: int
    behaviour: str
    config: ibft.Config
    state: ibft.State | None = None
    incarnation: int = 0
    last_decided: int = 0
    seen: list[bytes] = field(default_factory=list)


def default_value(seed: int, index: int, height: int, round_: int, size: int) -> bytes:
    """Return the batch validator ``index`` proposes at (height, round): distinct per proposer."""
    head = f"batch h={height} r={round_} by={index} ".encode()
    body = hashlib.shake_256(f"{seed}/{index}/{height}/{round_}".encode()).digest(size)
    return head + body


def default_validity(height: int, value: bytes) -> bool:
    """Reject the values that the ``invalid_proposals`` behaviour proposes."""
    return not value.startswith(INVALID_PREFIX)


class Simulation:
    """n validators, a seeded network and named behaviours; ``run`` plays it in virtual time."""

    def __init__(
        self,
        n: int = 4,
        seed: int = 0,
        behaviours: Mapping[int, str] | None = None,
        *,
        powers: Iterable[int] | None = None,
        delay: float = 1.0,
        jitter: float = 0.0,
        drop: float = 0.0,
        duplicate: float = 0.0,
        links: Mapping[tuple[int, int], Link] | None = None,
        partitions: Iterable[Partition] = (),
        stabilise_at: float = 0.0,
        base_timeout: float = 10.0,
        max_timeout: float = 160.0,
        seal_scheme: str = "hash",
        crash: Mapping[int, tuple[float, float | None]] | None = None,
        value_size: int = 64,
        is_valid: Callable[[int, bytes], bool] = default_validity,
        commit_digest: Callable[[int, bytes], bytes] = ibft.default_commit_digest,
        first_height: int = 1,
        lossy_drop: float = 0.5,
    ) -> None:
        if n < 1:
            raise SimulationError("need at least one validator")
        behaviours = dict(behaviours or {})
        for index, name in behaviours.items():
            if not 0 <= index < n:
                raise SimulationError(f"behaviour for node {index} outside 0..{n - 1}")
            if name not in BEHAVIOURS:
                raise SimulationError(f"unknown behaviour {name!r}; known: {BEHAVIOURS}")
        for p in (drop, duplicate, lossy_drop):
            if not 0.0 <= p <= 1.0:
                raise SimulationError("probabilities must lie in [0, 1]")
        if delay < 0 or jitter < 0:
            raise SimulationError("delays must not be negative")
        powers = list(powers) if powers is not None else [1] * n
        if len(powers) != n:
            raise SimulationError("one voting power per validator")
        self.n = n
        self.seed = seed
        self.rng = random.Random(seed)
        self.delay, self.jitter, self.drop, self.duplicate = delay, jitter, drop, duplicate
        self.links = dict(links or {})
        self.partitions = tuple(partitions)
        self.stabilise_at = stabilise_at
        self.lossy_drop = lossy_drop
        self.first_height = first_height
        self.crash = dict(crash or {})
        scheme = get_seal_scheme(seal_scheme)
        keypairs = [generate_keypair(f"sim-{seed}-{i}".encode()) for i in range(n)]
        seals = [scheme.keygen(f"sim-seal-{seed}-{i}".encode()) for i in range(n)]
        validators = tuple(
            ibft.Validator(kp.address, power, pub)
            for kp, power, (_, pub) in zip(keypairs, powers, seals, strict=True)
        )
        self.addresses = {v.address: i for i, v in enumerate(validators)}
        self.nodes: list[_Node] = []
        for i in range(n):
            name = behaviours.get(i, "honest")
            config = ibft.Config(
                validators=validators,
                keypair=keypairs[i],
                seal_secret=seals[i][0],
                seal_scheme=scheme,
                propose=self._proposer_for(i, name, value_size),
                is_valid=is_valid,
                commit_digest=commit_digest,
                base_timeout=base_timeout,
                max_timeout=max_timeout,
            )
            self.nodes.append(_Node(i, name, config))
        self.results = [NodeResult(node.behaviour) for node in self.nodes]
        self.queue: list[tuple[float, int, str, tuple]] = []
        self.seq = 0
        self.now = 0.0
        self.events = 0
        self.started = False

    def _proposer_for(self, index: int, name: str, size: int) -> Callable[[int, int], bytes]:
        seed = self.seed

        def propose(height: int, round_: int) -> bytes:
            value = default_value(seed, index, height, round_, size)
            return INVALID_PREFIX + value if name == "invalid_proposals" else value

        return propose

    # --- the run ---

    def run(self, heights: int = 1, until: float = math.inf) -> SimResult:
        """Play until every correct node decided ``heights`` heights, or virtual time ``until``.

        A later call goes on from where the last one stopped.
        """
        if heights < 1:
            raise SimulationError("heights must be at least 1")
        last = self.first_height + heights - 1
        if not self.started:
            self._begin()
        watch = [i for i, node in enumerate(self.nodes) if node.behaviour in CORRECT]
        events = 0
        while self.queue and not all(self.nodes[i].last_decided >= last for i in watch):
            if self.queue[0][0] > until:
                self.now = max(self.now, until)
                break
            time, _, kind, args = heapq.heappop(self.queue)
            self.now = time
            events += 1
            self._dispatch(kind, args)
        self.events += events
        return SimResult(self.results, self.now, self.first_height, heights, self.events)

    def _begin(self) -> None:
        """Boot every node and schedule the crashes and restarts."""
        self.started = True
        for node in self.nodes:
            if node.behaviour != "silent":
                self._boot(node, self.first_height)
            if node.behaviour == "crash":
                crash_at, restart_at = self.crash.get(node.index, (2 * self.delay, None))
                self._push(crash_at, "crash", (node.index,))
                if restart_at is not None:
                    self._push(restart_at, "restart", (node.index,))

    def _push(self, time: float, kind: str, args: tuple) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (time, self.seq, kind, args))

    def _dispatch(self, kind: str, args: tuple) -> None:
        if kind == "deliver":
            to, data = args
            node = self.nodes[to]
            if node.state is None:
                return
            if node.behaviour == "replay" and len(node.seen) < REPLAY_MEMORY:
                node.seen.append(data)
            self._apply(node, ibft.on_message(node.config, node.state, data))
        elif kind == "timer":
            index, incarnation, height, round_ = args
            node = self.nodes[index]
            if node.state is None or node.incarnation != incarnation:
                return
            self._apply(node, ibft.on_timeout(node.config, node.state, height, round_))
        elif kind == "crash":
            node = self.nodes[args[0]]
            node.state = None
            node.incarnation += 1
            logger.debug("t=%.2f node %d crashed", self.now, node.index)
        elif kind == "restart":
            node = self.nodes[args[0]]
            logger.debug("t=%.2f node %d restarted", self.now, node.index)
            self._boot(node, node.last_decided + 1 if node.last_decided else self.first_height)

    def _boot(self, node: _Node, height: int) -> None:
        """Start (or restart from what it persisted) a node's state machine."""
        sealed = self.results[node.index].seals.get(height)
        digest = next(iter(sealed)) if sealed else None
        node.incarnation += 1
        self._apply(node, ibft.start(node.config, height, digest))

    def _apply(self, node: _Node, transition: ibft.Transition) -> None:
        node.state = transition.state
        for effect in transition.effects:
            if isinstance(effect, ibft.Broadcast):
                self._note_seal(node, effect.data)
                for peer in range(self.n):
                    if peer != node.index:
                        self._send(node, peer, effect.data)
                self._misbehave(node)
            elif isinstance(effect, ibft.Send):
                self._send(node, self.addresses[effect.to], effect.data)
            elif isinstance(effect, ibft.SetTimer):
                args = (node.index, node.incarnation, effect.height, effect.round)
                self._push(self.now + effect.delay, "timer", args)
            elif isinstance(effect, ibft.Decide):
                result = self.results[node.index]
                if effect.height not in result.decisions:
                    result.decisions[effect.height] = effect.value
                    result.decision_times[effect.height] = self.now
                    result.decision_rounds[effect.height] = effect.round
                node.last_decided = max(node.last_decided, effect.height)

    def _note_seal(self, node: _Node, data: bytes) -> None:
        """Record the digest a node seals, as its agent would persist it before sending."""
        if m.peek_kind(data) == m.Kind.COMMIT:
            commit = m.decode(data).commit.payload
            self.results[node.index].seals.setdefault(commit.height, set()).add(commit.digest)

    # --- faulty behaviours on the way out ---

    def _send(self, node: _Node, peer: int, data: bytes) -> None:
        behaviour = node.behaviour
        if behaviour == "bad_signatures":
            data = tamper_signature(data)
        elif (
            behaviour == "equivocate" and m.peek_kind(data) == m.Kind.PRE_PREPARE and peer % 2 == 1
        ):
            data = _equivocation(node.config, data)
        elif behaviour == "lossy" and self.rng.random() < self.lossy_drop:
            self._count(node, data)
            return
        self._transmit(node, peer, data)

    def _misbehave(self, node: _Node) -> None:
        """Add the spam or replays that a faulty node sends with each broadcast."""
        state = node.state
        if state is None:
            return
        if node.behaviour == "spam_future":
            for _ in range(SPAM_PER_SEND):
                peer = self.rng.randrange(self.n)
                if peer != node.index:
                    self._transmit(node, peer, self._spam(node.config.keypair, state))
        elif node.behaviour == "replay" and node.seen:
            for _ in range(REPLAY_PER_SEND):
                peer = self.rng.randrange(self.n)
                if peer != node.index:
                    self._transmit(node, peer, self.rng.choice(node.seen))

    def _spam(self, keypair: Keypair, state: ibft.State) -> bytes:
        """Return a validly signed message for a far future round or height."""
        height = state.height + self.rng.choice((0, 0, 1, 3, 50))
        round_ = state.round + self.rng.randrange(1, 1_000_000)
        digest = hashlib.sha256(self.rng.randbytes(8)).digest()
        if self.rng.random() < 0.5:
            return m.round_change(keypair, height, round_)
        return m.prepare(keypair, height, round_, digest)

    # --- links ---

    def _count(self, node: _Node, data: bytes) -> None:
        result = self.results[node.index]
        result.messages_sent += 1
        result.bytes_sent += len(data)

    def _transmit(self, node: _Node, peer: int, data: bytes) -> None:
        """Put one message on the link from ``node`` to ``peer``."""
        self._count(node, data)
        now = self.now
        if any(p.separates(node.index, peer, now) for p in self.partitions):
            return
        link = self.links.get((node.index, peer), Link())
        delay = self.delay if link.delay is None else link.delay
        jitter = self.jitter if link.jitter is None else link.jitter
        copies = 1
        if now < self.stabilise_at:
            drop = self.drop if link.drop is None else link.drop
            duplicate = self.duplicate if link.duplicate is None else link.duplicate
            if drop and self.rng.random() < drop:
                return
            if duplicate and self.rng.random() < duplicate:
                copies = 2
        for _ in range(copies):
            arrival = now + delay + (self.rng.uniform(0, jitter) if jitter else 0.0)
            self._push(arrival, "deliver", (peer, data))


def tamper_signature(data: bytes) -> bytes:
    """Return ``data`` with one bit of its main signature flipped (a DECIDED's first COMMIT's)."""
    fields = canonical_cbor.loads(data)  # [version, kind, ...], as offchain/protocol/ibft_wire
    if m.peek_kind(data) == m.Kind.DECIDED:  # [.., value, commits]
        if not fields[3]:
            return data
        signed = fields[3][0]
    else:  # [.., [payload, signature], ...]
        signed = fields[2]
    signature = bytearray(signed[1])
    signature[5] ^= 0x01
    signed[1] = bytes(signature)
    return canonical_cbor.dumps(fields)


def _equivocation(config: ibft.Config, data: bytes) -> bytes:
    """Return a second, conflicting PRE-PREPARE for the same height and round."""
    message = m.decode(data)
    payload = message.proposal.payload
    value = message.value + b"#equivocation"
    digest = config.commit_digest(payload.height, value)
    return m.pre_prepare(
        config.keypair,
        payload.height,
        payload.round,
        value,
        digest,
        message.round_changes,
        message.prepares,
    )
