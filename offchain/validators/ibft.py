"""IBFT 2.0 / QBFT consensus for one validator, as a pure state machine.

``start``, ``on_message`` and ``on_timeout`` take the immutable ``State`` and one input (wire
bytes or a timer expiry) and return a ``Transition``: the new state and the effects to carry out
(``Broadcast``, ``Send``, ``SetTimer``, ``Decide``). Nothing here reads a clock, a socket or a
disk, so the agent (or the simulator) owns all I/O and time.

The protocol follows QBFT: a PRE-PREPARE for round > 0 carries a quorum of ROUND-CHANGEs and,
when any of them names a prepared round, a quorum of PREPAREs proving the highest one, whose
value it must propose. One deviation: the COMMIT's seal is over a digest of (height, value)
that omits the round, so a validator that has sealed one digest at a height never seals another
there (the lock the contracts rely on to punish double signing). See docs/consensus.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from offchain.crypto.hashing import keccak
from offchain.crypto.keys import Keypair
from offchain.protocol import ibft_wire as m
from offchain.protocol.quorum import max_faulty, quorum
from offchain.validators.seals import SealScheme

logger = logging.getLogger(__name__)

# Defaults, in the caller's time unit (the simulator's virtual time, the agent's seconds).
DEFAULT_BASE_TIMEOUT = 1.0
DEFAULT_MAX_TIMEOUT = 64.0
# Bounds on what a validator keeps for later (counts of messages or heights).
DEFAULT_MAX_FUTURE_HEIGHTS = 8
DEFAULT_MAX_BUFFERED_PER_SENDER = 64
DEFAULT_MAX_ROUND_CHANGES_PER_SENDER = 8
DEFAULT_KEPT_PROOFS = 16


class ConfigError(ValueError):
    """An engine configuration that cannot work."""


def default_commit_digest(height: int, value: bytes) -> bytes:
    """Return keccak256(height as 8 bytes || keccak256(value)); the round is left out."""
    return keccak(height.to_bytes(8, "big") + keccak(value))


def _always_valid(height: int, value: bytes) -> bool:
    """Accept every value (the default validity rule)."""
    return True


@dataclass(frozen=True)
class Validator:
    """One member of the validator set: its address, voting power and seal public key."""

    address: str
    power: int
    seal_key: bytes


@dataclass(frozen=True)
class Config:
    """Everything fixed for one validator: the set, its keys, the rules and the bounds."""

    validators: tuple[Validator, ...]
    keypair: Keypair
    seal_secret: object
    seal_scheme: SealScheme
    propose: Callable[[int, int], bytes]
    is_valid: Callable[[int, bytes], bool] = _always_valid
    commit_digest: Callable[[int, bytes], bytes] = default_commit_digest
    base_timeout: float = DEFAULT_BASE_TIMEOUT
    max_timeout: float = DEFAULT_MAX_TIMEOUT
    max_future_heights: int = DEFAULT_MAX_FUTURE_HEIGHTS
    max_buffered_per_sender: int = DEFAULT_MAX_BUFFERED_PER_SENDER
    max_round_changes_per_sender: int = DEFAULT_MAX_ROUND_CHANGES_PER_SENDER
    kept_proofs: int = DEFAULT_KEPT_PROOFS

    def __post_init__(self) -> None:
        if not self.validators:
            raise ConfigError("the validator set is empty")
        if len(self.validators) > m.MAX_VALIDATORS:
            raise ConfigError(f"more than {m.MAX_VALIDATORS} validators")
        addresses = [v.address for v in self.validators]
        if len(set(addresses)) != len(addresses):
            raise ConfigError("duplicate validator address")
        if any(v.power <= 0 for v in self.validators):
            raise ConfigError("voting power must be positive")
        if self.keypair.address not in addresses:
            raise ConfigError("this validator's address is not in the set")
        if not 0 < self.base_timeout <= self.max_timeout:
            raise ConfigError("need 0 < base_timeout <= max_timeout")
        if min(self.max_future_heights, self.max_buffered_per_sender) < 0:
            raise ConfigError("buffer bounds must not be negative")

    @cached_property
    def powers(self) -> dict[str, int]:
        """Return voting power by address."""
        return {v.address: v.power for v in self.validators}

    @cached_property
    def seal_keys(self) -> dict[str, bytes]:
        """Return seal public key by address."""
        return {v.address: v.seal_key for v in self.validators}

    @cached_property
    def quorum(self) -> int:
        """Return the voting power a decision needs: floor(2P/3) + 1."""
        return quorum(sum(self.powers.values()))

    @cached_property
    def weak_quorum(self) -> int:
        """Return f + 1 in voting power: enough to include one honest validator."""
        return max_faulty(sum(self.powers.values())) + 1

    @property
    def address(self) -> str:
        """Return this validator's address."""
        return self.keypair.address


# --- inputs' results ------------------------------------------------------------------------


@dataclass(frozen=True)
class Broadcast:
    """Send ``data`` to every other validator."""

    data: bytes


@dataclass(frozen=True)
class Send:
    """Send ``data`` to one validator."""

    to: str
    data: bytes


@dataclass(frozen=True)
class SetTimer:
    """Call ``on_timeout(height, round)`` after ``delay``."""

    height: int
    round: int
    delay: float


@dataclass(frozen=True)
class Decide:
    """``value`` is final at ``height``; ``seals`` are the (address, seal) pairs over ``digest``."""

    height: int
    round: int
    value: bytes
    digest: bytes
    seals: tuple[tuple[str, bytes], ...]


Effect = Broadcast | Send | SetTimer | Decide


@dataclass(frozen=True)
class PreparedCert:
    """A quorum of PREPAREs for ``value`` at ``round``."""

    round: int
    value: bytes
    digest: bytes
    prepares: tuple[m.Signed, ...]


@dataclass(frozen=True)
class Buffered:
    """A message kept for a later height or round."""

    sender: str
    height: int
    round: int
    data: bytes


@dataclass(frozen=True)
class State:
    """One validator's consensus state; never mutated (each input returns a new one)."""

    height: int
    round: int = 0
    proposal: m.PrePrepareMsg | None = None
    proposed: bool = False
    sent_commit: bool = False
    prepares: Mapping[str, m.Signed] = field(default_factory=dict)
    commits: Mapping[str, m.Signed] = field(default_factory=dict)
    verified: frozenset[str] = frozenset()
    bad_seals: frozenset[str] = frozenset()
    prepared: PreparedCert | None = None
    sealed_digest: bytes | None = None
    round_changes: Mapping[int, Mapping[str, m.RoundChangeMsg]] = field(default_factory=dict)
    buffer: tuple[Buffered, ...] = ()
    proofs: Mapping[int, bytes] = field(default_factory=dict)
    replied: frozenset[tuple[str, int, int]] = frozenset()


class Transition(NamedTuple):
    """The new state and the effects of one input."""

    state: State
    effects: list[Effect]


# --- public functions -----------------------------------------------------------------------


def proposer(config: Config, height: int, round_: int) -> str:
    """Return the proposer for ``height`` and ``round_``: rotation over the set in order."""
    return config.validators[(height + round_) % len(config.validators)].address


def round_timeout(config: Config, round_: int) -> float:
    """Return how long round ``round_`` waits: base * 2**round, capped at max_timeout."""
    if round_ < 0:
        raise ValueError("round must not be negative")
    if round_ >= 64:
        return config.max_timeout
    return min(config.base_timeout * 2**round_, config.max_timeout)


def start(config: Config, height: int, sealed_digest: bytes | None = None) -> Transition:
    """Return the state and effects of starting at ``height`` round 0.

    ``sealed_digest`` is the digest this validator already sealed at ``height`` before a
    restart, if any (the agent persists it); the lock then survives the restart.
    """
    if height < 0:
        raise ValueError("height must not be negative")
    work = _Work(config, State(height=height))
    work.enter_height(height, sealed_digest)
    return work.finish()


def on_message(config: Config, state: State, data: bytes) -> Transition:
    """Return the state and effects after receiving wire bytes ``data`` from the network."""
    work = _Work(config, state)
    work.handle(data)
    return work.finish()


def on_timeout(config: Config, state: State, height: int, round_: int) -> Transition:
    """Return the state and effects after the timer for (height, round) expires."""
    work = _Work(config, state)
    if height == work.height and round_ == work.round:
        logger.debug("%s: round %d of height %d timed out", config.address, round_, height)
        work.enter_round(round_ + 1)
    return work.finish()


# --- the machine ----------------------------------------------------------------------------


class _Work:
    """A private mutable copy of a State that one input turns into the next State."""

    def __init__(self, config: Config, state: State) -> None:
        self.cfg = config
        self.me = config.address
        self.height = state.height
        self.round = state.round
        self.proposal = state.proposal
        self.proposed = state.proposed
        self.sent_commit = state.sent_commit
        self.prepares = dict(state.prepares)
        self.commits = dict(state.commits)
        self.verified = set(state.verified)
        self.bad_seals = set(state.bad_seals)
        self.prepared = state.prepared
        self.sealed_digest = state.sealed_digest
        self.round_changes = {r: dict(v) for r, v in state.round_changes.items()}
        self.buffer = list(state.buffer)
        self.proofs = dict(state.proofs)
        self.replied = set(state.replied)
        self.effects: list[Effect] = []

    def finish(self) -> Transition:
        """Return the new State and the effects collected."""
        state = State(
            height=self.height,
            round=self.round,
            proposal=self.proposal,
            proposed=self.proposed,
            sent_commit=self.sent_commit,
            prepares=self.prepares,
            commits=self.commits,
            verified=frozenset(self.verified),
            bad_seals=frozenset(self.bad_seals),
            prepared=self.prepared,
            sealed_digest=self.sealed_digest,
            round_changes=self.round_changes,
            buffer=tuple(self.buffer),
            proofs=self.proofs,
            replied=frozenset(self.replied),
        )
        return Transition(state, self.effects)

    # --- helpers ---

    def power(self, senders: Iterable[str]) -> int:
        """Return the voting power of distinct validator ``senders``."""
        powers = self.cfg.powers
        return sum(powers.get(s, 0) for s in set(senders))

    def drop(self, reason: str, *args: object) -> None:
        """Log why an input was dropped."""
        logger.debug("%s h=%d r=%d: dropped: " + reason, self.me, self.height, self.round, *args)

    # --- heights and rounds ---

    def enter_height(self, height: int, sealed_digest: bytes | None = None) -> None:
        """Start ``height`` at round 0 and replay what was buffered for it."""
        self.height = height
        self.prepared = None
        self.sealed_digest = sealed_digest
        self.round_changes = {}
        self._reset_round(0)
        self.effects.append(SetTimer(height, 0, round_timeout(self.cfg, 0)))
        self.try_propose()
        self.replay()

    def enter_round(self, round_: int) -> None:
        """Move to ``round_`` of this height, announce it with a ROUND-CHANGE, replay its buffer."""
        self._reset_round(round_)
        self.round_changes = {r: v for r, v in self.round_changes.items() if r >= round_}
        self.effects.append(SetTimer(self.height, round_, round_timeout(self.cfg, round_)))
        cert = self.prepared
        if cert is None:
            data = m.round_change(self.cfg.keypair, self.height, round_)
        else:
            data = m.round_change(
                self.cfg.keypair,
                self.height,
                round_,
                cert.round,
                cert.value,
                cert.digest,
                cert.prepares,
            )
        self.effects.append(Broadcast(data))
        own = m.decode(data)
        self.round_changes.setdefault(round_, {})[self.me] = own
        self.try_propose()
        self.replay()

    def _reset_round(self, round_: int) -> None:
        self.round = round_
        self.proposal = None
        self.proposed = False
        self.sent_commit = False
        self.prepares = {}
        self.commits = {}
        self.verified = set()
        self.bad_seals = set()

    def replay(self) -> None:
        """Handle buffered messages that are now current; drop those now in the past.

        ROUND-CHANGEs of this height are handed over whatever their round: they act on arrival.
        """
        height, round_ = self.height, self.round
        ready, kept = [], []
        for b in self.buffer:
            if b.height == height and (
                b.round == round_ or m.peek_kind(b.data) == m.Kind.ROUND_CHANGE
            ):
                ready.append(b)
            elif b.height > height or (b.height == height and b.round > round_):
                kept.append(b)
        self.buffer = kept
        for item in ready:
            # if an earlier one moved the machine on, handling re-buffers or drops the rest
            self.handle(item.data)

    def stash(self, sender: str, height: int, round_: int, data: bytes) -> None:
        """Keep a message for a later height or round, within the bounds."""
        if height > self.height + self.cfg.max_future_heights:
            self.drop("height %d beyond the buffer bound", height)
            return
        mine = [b for b in self.buffer if b.sender == sender]
        if len(mine) >= self.cfg.max_buffered_per_sender:
            self.drop("buffer full for %s", sender)
            return
        if any(b.data == data for b in mine):
            return
        self.buffer.append(Buffered(sender, height, round_, data))

    # --- inputs ---

    def handle(self, data: bytes) -> None:
        """Handle one message from the wire."""
        try:
            # a stranger's message costs one signature recovery, a validator's one per signer
            message = m.decode(data, self.cfg.powers.__contains__)
        except m.MessageError as exc:
            self.drop("undecodable message: %s", exc)
            return
        if isinstance(message, m.DecidedMsg):
            self.on_decided(message)
            return
        signed = _main_signed(message)
        sender = signed.sender
        if sender not in self.cfg.powers:
            self.drop("sender %s is not a validator", sender)
            return
        height, round_ = signed.payload.height, signed.payload.round
        if height < self.height:
            if isinstance(message, m.RoundChangeMsg):
                # Only a validator stuck at a finished height still changes rounds there.
                self.reply_with_proof(sender, height, round_)
            else:
                self.drop("message for past height %d", height)
            return
        if height > self.height:
            self.stash(sender, height, round_, data)
            return
        if isinstance(message, m.RoundChangeMsg):
            self.on_round_change(message)
            return
        if round_ < self.round:
            self.drop("message for past round %d", round_)
            return
        if round_ > self.round:
            self.stash(sender, height, round_, data)
            return
        if isinstance(message, m.PrePrepareMsg):
            self.on_pre_prepare(message)
        elif isinstance(message, m.PrepareMsg):
            self.on_prepare(message.prepare)
        else:
            self.on_commit(message.commit)

    def reply_with_proof(self, sender: str, height: int, round_: int) -> None:
        """Send a lagging validator the proof of a height it has not finished."""
        proof = self.proofs.get(height)
        key = (sender, height, round_)
        if proof is None or sender == self.me or key in self.replied:
            self.drop("message for past height %d", height)
            return
        self.replied.add(key)
        self.effects.append(Send(sender, proof))

    def on_pre_prepare(self, message: m.PrePrepareMsg) -> None:
        """Accept a valid proposal for this round and PREPARE it."""
        signed = message.proposal
        payload = signed.payload
        if signed.sender != proposer(self.cfg, self.height, self.round):
            self.drop("proposal from %s, not the proposer", signed.sender)
            return
        if self.proposal is not None:
            if self.proposal.proposal != signed:
                self.drop("second, different proposal in round %d", self.round)
            return
        if payload.digest != self.cfg.commit_digest(self.height, message.value):
            self.drop("proposal digest does not match its value")
            return
        reason = self.unjustified(message)
        if reason:
            self.drop("unjustified proposal: %s", reason)
            return
        if not self._valid(message.value):
            self.drop("invalid proposal value")
            return
        self.proposal = message
        data = m.prepare(self.cfg.keypair, self.height, self.round, payload.digest)
        self.effects.append(Broadcast(data))
        self.prepares.setdefault(self.me, m.decode(data).prepare)
        self.check_progress()

    def _valid(self, value: bytes) -> bool:
        try:
            return bool(self.cfg.is_valid(self.height, value))
        except Exception:  # the rule is the caller's code; a crash in it means "invalid"
            logger.exception("%s: validity rule raised", self.me)
            return False

    def unjustified(self, message: m.PrePrepareMsg) -> str:
        """Return why a proposal's justification fails, or "" when it holds."""
        if self.round == 0:
            if message.round_changes or message.prepares:
                return "round 0 carries a justification"
            return ""
        changes = message.round_changes
        senders = [rc.sender for rc in changes]
        if len(set(senders)) != len(senders):
            return "duplicate round-change senders"
        if any(s not in self.cfg.powers for s in senders):
            return "round-change from a non-validator"
        if any(
            (rc.payload.height, rc.payload.round) != (self.height, self.round) for rc in changes
        ):
            return "round-change for another height or round"
        if self.power(senders) < self.cfg.quorum:
            return "round-changes under quorum"
        claims = [rc.payload for rc in changes if rc.payload.prepared_round is not None]
        if not claims:
            return "" if not message.prepares else "prepares without a prepared claim"
        top = max(c.prepared_round for c in claims)
        digest = message.proposal.payload.digest
        if digest not in {c.prepared_digest for c in claims if c.prepared_round == top}:
            return "value is not the highest prepared one"
        if not self.prepare_quorum(message.prepares, top, digest):
            return "no prepared certificate for the highest prepared round"
        return ""

    def prepare_quorum(self, prepares: tuple[m.Signed, ...], round_: int, digest: bytes) -> bool:
        """Check that ``prepares`` are a quorum of PREPAREs for (this height, round_, digest)."""
        senders = [p.sender for p in prepares]
        if len(set(senders)) != len(senders):
            return False
        want = m.Prepare(self.height, round_, digest)
        if any(p.payload != want or p.sender not in self.cfg.powers for p in prepares):
            return False
        return self.power(senders) >= self.cfg.quorum

    def on_prepare(self, signed: m.Signed) -> None:
        """Record the first PREPARE of a sender in this round."""
        if signed.sender in self.prepares:
            return
        self.prepares[signed.sender] = signed
        self.check_progress()

    def on_commit(self, signed: m.Signed) -> None:
        """Record the first COMMIT of a sender in this round; seals are checked at quorum."""
        sender = signed.sender
        if sender in self.commits or sender in self.bad_seals:
            return
        if self.proposal is not None and signed.payload.digest != self._digest():
            self.drop("commit for another digest from %s", sender)
            return
        self.commits[sender] = signed
        self.check_progress()

    def _digest(self) -> bytes:
        return self.proposal.proposal.payload.digest

    def seals_hold(self, commits: list[m.Signed], digest: bytes) -> bool:
        """Check the seals of a quorum of COMMITs, dropping bad ones; return if a quorum remains.

        The unchecked seals are verified together first (one aggregate check for BLS); only if
        that fails is each one checked, so an invalid seal costs its sender its COMMIT and never
        blocks the others.
        """
        scheme, keys = self.cfg.seal_scheme, self.cfg.seal_keys
        unchecked = [c for c in commits if c.sender not in self.verified]
        if unchecked:
            publics = tuple(keys[c.sender] for c in unchecked)
            seals = tuple(c.payload.seal for c in unchecked)
            if scheme.verify_many(publics, digest, seals):
                self.verified.update(c.sender for c in unchecked)
            else:
                for c in unchecked:
                    if scheme.verify(keys[c.sender], digest, c.payload.seal):
                        self.verified.add(c.sender)
                    else:
                        self.drop("invalid commit seal from %s", c.sender)
                        del self.commits[c.sender]
                        self.bad_seals.add(c.sender)
        good = [c.sender for c in commits if c.sender in self.verified]
        return self.power(good) >= self.cfg.quorum

    def check_progress(self) -> None:
        """COMMIT once prepared; decide once a quorum has committed."""
        if self.proposal is None:
            return
        digest = self.proposal.proposal.payload.digest
        if not self.sent_commit:
            matching = tuple(p for p in self.prepares.values() if p.payload.digest == digest)
            if self.power(p.sender for p in matching) >= self.cfg.quorum:
                self.sent_commit = True
                self.prepared = PreparedCert(self.round, self.proposal.value, digest, matching)
                if self.sealed_digest not in (None, digest):
                    logger.warning(
                        "%s h=%d: prepared another value; it stays locked on its sealed digest",
                        self.me,
                        self.height,
                    )
                else:
                    self.sealed_digest = digest
                    seal = self.cfg.seal_scheme.sign(self.cfg.seal_secret, digest)
                    data = m.commit(self.cfg.keypair, self.height, self.round, digest, seal)
                    self.effects.append(Broadcast(data))
                    self.commits.setdefault(self.me, m.decode(data).commit)
                    self.verified.add(self.me)
        matching = [c for c in self.commits.values() if c.payload.digest == digest]
        if self.power(c.sender for c in matching) < self.cfg.quorum:
            return
        if self.seals_hold(matching, digest):
            good = [c for c in matching if c.sender in self.verified]
            self.decide(self.round, self.proposal.value, digest, good)

    def decide(self, round_: int, value: bytes, digest: bytes, commits: list[m.Signed]) -> None:
        """Emit the decision, keep its proof for laggards, and start the next height."""
        order = {v.address: i for i, v in enumerate(self.cfg.validators)}
        commits = sorted(commits, key=lambda c: order[c.sender])
        seals = tuple((c.sender, c.payload.seal) for c in commits)
        self.effects.append(Decide(self.height, round_, value, digest, seals))
        self.proofs[self.height] = m.encode(m.DecidedMsg(value, tuple(commits)))
        oldest = self.height - self.cfg.kept_proofs
        self.proofs = {h: p for h, p in self.proofs.items() if h > oldest}
        self.replied = {k for k in self.replied if k[1] > oldest}
        self.enter_height(self.height + 1)

    def on_round_change(self, message: m.RoundChangeMsg) -> None:
        """Record a ROUND-CHANGE; jump rounds on f+1 of them; propose on a quorum."""
        signed = message.round_change
        payload = signed.payload
        sender = signed.sender
        if payload.round < max(self.round, 1):
            self.drop("round-change for past round %d", payload.round)
            return
        seen = self.round_changes.get(payload.round, {})
        if sender in seen:
            self.drop("repeated round-change from %s", sender)
            return
        count = sum(sender in by for by in self.round_changes.values())
        if count >= self.cfg.max_round_changes_per_sender:
            self.drop("too many pending round-changes from %s", sender)
            return
        reason = self.bad_certificate(message)
        if reason:
            self.drop("round-change with a bad certificate: %s", reason)
            return
        self.round_changes.setdefault(payload.round, {})[sender] = message
        self.maybe_jump()
        self.try_propose()

    def bad_certificate(self, message: m.RoundChangeMsg) -> str:
        """Return why a ROUND-CHANGE's prepared certificate fails, or "" when it holds."""
        payload = message.round_change.payload
        if payload.prepared_round is None:
            if message.prepared_value or message.prepares:
                return "certificate without a prepared round"
            return ""
        if payload.prepared_round >= payload.round:
            return "prepared round not below the target round"
        if payload.prepared_digest != self.cfg.commit_digest(self.height, message.prepared_value):
            return "prepared value does not match its digest"
        if not self.prepare_quorum(
            message.prepares, payload.prepared_round, payload.prepared_digest
        ):
            return "prepares are not a quorum for the prepared round"
        return ""

    def maybe_jump(self) -> None:
        """Move to the lowest higher round once f+1 power has asked for higher rounds."""
        lowest: dict[str, int] = {}
        for round_, by in self.round_changes.items():
            if round_ <= self.round:
                continue
            for sender in by:
                lowest[sender] = min(lowest.get(sender, round_), round_)
        if lowest and self.power(lowest) >= self.cfg.weak_quorum:
            target = min(lowest.values())
            logger.debug("%s h=%d: f+1 round-changes, jumping to %d", self.me, self.height, target)
            self.enter_round(target)

    def try_propose(self) -> None:
        """Propose when this validator leads the round and, past round 0, holds a quorum of RCs."""
        if self.proposed or self.proposal is not None:
            return
        if proposer(self.cfg, self.height, self.round) != self.me:
            return
        changes: tuple[m.Signed, ...] = ()
        prepares: tuple[m.Signed, ...] = ()
        value = None
        if self.round > 0:
            by = self.round_changes.get(self.round, {})
            if self.power(by) < self.cfg.quorum:
                return
            changes = tuple(rc.round_change for rc in by.values())
            claims = [
                rc for rc in by.values() if rc.round_change.payload.prepared_round is not None
            ]
            if claims:
                best = max(claims, key=lambda rc: rc.round_change.payload.prepared_round)
                value, prepares = best.prepared_value, best.prepares
        if value is None:
            value = self.cfg.propose(self.height, self.round)
        self.proposed = True
        digest = self.cfg.commit_digest(self.height, value)
        data = m.pre_prepare(
            self.cfg.keypair, self.height, self.round, value, digest, changes, prepares
        )
        self.effects.append(Broadcast(data))
        self.handle(data)

    def on_decided(self, message: m.DecidedMsg) -> None:
        """Adopt a peer's proof that this height was decided."""
        commits = message.commits
        if not commits:
            self.drop("empty decision proof")
            return
        first = commits[0].payload
        if first.height != self.height:
            self.drop("decision proof for height %d", first.height)
            return
        digest = self.cfg.commit_digest(self.height, message.value)
        senders = [c.sender for c in commits]
        if len(set(senders)) != len(senders) or any(s not in self.cfg.powers for s in senders):
            self.drop("decision proof with bad signers")
            return
        if any(
            (c.payload.height, c.payload.round, c.payload.digest)
            != (self.height, first.round, digest)
            for c in commits
        ):
            self.drop("decision proof mixes heights, rounds or digests")
            return
        if self.power(senders) < self.cfg.quorum:
            self.drop("decision proof under quorum")
            return
        publics = tuple(self.cfg.seal_keys[c.sender] for c in commits)
        if not self.cfg.seal_scheme.verify_many(
            publics, digest, tuple(c.payload.seal for c in commits)
        ):
            self.drop("decision proof with an invalid seal")
            return
        logger.info("%s: caught up on height %d from a proof", self.me, self.height)
        self.decide(first.round, message.value, digest, list(commits))


def _main_signed(message: m.Message) -> m.Signed:
    """Return the signed payload that names a message's sender, height and round."""
    if isinstance(message, m.PrePrepareMsg):
        return message.proposal
    if isinstance(message, m.PrepareMsg):
        return message.prepare
    if isinstance(message, m.CommitMsg):
        return message.commit
    return message.round_change


__all__ = [
    "Broadcast",
    "Config",
    "ConfigError",
    "Decide",
    "Effect",
    "Send",
    "SetTimer",
    "State",
    "Transition",
    "Validator",
    "default_commit_digest",
    "on_message",
    "on_timeout",
    "proposer",
    "round_timeout",
    "start",
]
