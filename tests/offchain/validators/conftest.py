"""Helpers to drive one IBFT state machine by hand: a validator set, message builders, a driver."""

from collections.abc import Callable

import pytest

from offchain.crypto.keys import Keypair, generate_keypair
from offchain.protocol import ibft_wire as m
from offchain.validators import ibft
from offchain.validators.seals import seal_scheme


class Net:
    """n validators' keys and configs, and builders of their signed messages."""

    def __init__(
        self,
        n: int = 4,
        scheme: str = "hash",
        is_valid: Callable[[int, bytes], bool] = lambda h, v: not v.startswith(b"invalid"),
        base_timeout: float = 1.0,
        max_timeout: float = 8.0,
        **bounds: int,
    ) -> None:
        self.n = n
        self.scheme = seal_scheme(scheme)
        self.keys = [generate_keypair(f"unit-{i}".encode()) for i in range(n)]
        self.seals = [self.scheme.keygen(f"unit-seal-{i}".encode()) for i in range(n)]
        publics = [pub for _, pub in self.seals]
        self.validators = tuple(
            ibft.Validator(k.address, 1, pub) for k, pub in zip(self.keys, publics, strict=True)
        )
        self.configs = [
            ibft.Config(
                validators=self.validators,
                keypair=self.keys[i],
                seal_secret=self.seals[i][0],
                seal_scheme=self.scheme,
                propose=lambda h, r, i=i: self.value(i, h, r),
                is_valid=is_valid,
                base_timeout=base_timeout,
                max_timeout=max_timeout,
                **bounds,
            )
            for i in range(n)
        ]

    # --- values and roles ---

    @staticmethod
    def value(i: int, height: int, round_: int) -> bytes:
        return f"value of {i} at {height}/{round_}".encode()

    @staticmethod
    def digest(height: int, value: bytes) -> bytes:
        return ibft.default_commit_digest(height, value)

    def proposer(self, height: int, round_: int) -> int:
        return (height + round_) % self.n

    def others(self, *exclude: int) -> list[int]:
        return [i for i in range(self.n) if i not in exclude]

    # --- builders (wire bytes) ---

    def pp(self, i, height, round_, value, rcs=(), prepares=(), digest=None) -> bytes:
        digest = self.digest(height, value) if digest is None else digest
        return m.pre_prepare(self.keys[i], height, round_, value, digest, rcs, prepares)

    def prepare(self, i, height, round_, digest) -> bytes:
        return m.prepare(self.keys[i], height, round_, digest)

    def commit(self, i, height, round_, digest, seal=None) -> bytes:
        seal = self.scheme.sign(self.seals[i][0], digest) if seal is None else seal
        return m.commit(self.keys[i], height, round_, digest, seal)

    def rc(self, i, height, round_, cert=None) -> bytes:
        """ROUND-CHANGE; ``cert`` is (prepared_round, value, signers of its PREPAREs)."""
        if cert is None:
            return m.round_change(self.keys[i], height, round_)
        pr, value, signers = cert
        digest = self.digest(height, value)
        prepares = self.signed_prepares(signers, height, pr, digest)
        return m.round_change(self.keys[i], height, round_, pr, value, digest, prepares)

    # --- builders (signed payloads, for justifications) ---

    def signed_prepares(self, signers, height, round_, digest) -> tuple[m.Signed, ...]:
        return tuple(m.sign(self.keys[i], m.Prepare(height, round_, digest)) for i in signers)

    def signed_rc(self, i, height, round_, prepared=None, keypair: Keypair | None = None):
        """A signed ROUND-CHANGE payload; ``prepared`` is (prepared_round, value)."""
        pr, digest = (
            (None, None) if prepared is None else (prepared[0], self.digest(height, prepared[1]))
        )
        key = self.keys[i] if keypair is None else keypair
        return m.sign(key, m.RoundChange(height, round_, pr, digest))


class Driver:
    """One validator's state machine, fed by hand; remembers the last effects."""

    def __init__(self, net: Net, index: int, height: int = 1, sealed: bytes | None = None):
        self.net = net
        self.index = index
        self.config = net.configs[index]
        self.state, self.effects = ibft.start(self.config, height, sealed)
        self.all_effects = list(self.effects)

    def feed(self, *datas: bytes) -> list[ibft.Effect]:
        effects: list[ibft.Effect] = []
        for data in datas:
            self.state, out = ibft.on_message(self.config, self.state, data)
            effects.extend(out)
        self.effects = effects
        self.all_effects.extend(effects)
        return effects

    def timeout(self, height: int | None = None, round_: int | None = None):
        height = self.state.height if height is None else height
        round_ = self.state.round if round_ is None else round_
        self.state, self.effects = ibft.on_timeout(self.config, self.state, height, round_)
        self.all_effects.extend(self.effects)
        return self.effects

    def sent(self, cls, effects=None) -> list:
        """Decoded broadcasts of message class ``cls`` among ``effects`` (default: the last)."""
        effects = self.effects if effects is None else effects
        out = []
        for e in effects:
            if isinstance(e, ibft.Broadcast):
                msg = m.decode(e.data)
                if isinstance(msg, cls):
                    out.append(msg)
        return out

    def decisions(self, effects=None) -> list[ibft.Decide]:
        effects = self.all_effects if effects is None else effects
        return [e for e in effects if isinstance(e, ibft.Decide)]


@pytest.fixture
def net() -> Net:
    return Net(4)


@pytest.fixture
def make_net() -> Callable[..., Net]:
    return Net


@pytest.fixture
def driver() -> Callable[..., Driver]:
    return Driver


@pytest.fixture
def outsider() -> Keypair:
    return generate_keypair(b"not a validator")
