"""Deploy and wire every EMC Protocol contract, idempotently: the one deployment, in web3.

`deploy` takes a web3 connection, a `Sender` (the deployer's address and how a transaction from
it reaches the chain) and the parameters, and deploys from Ape's build (`artifacts.py`).
`ape run deploy` (scripts/deploy.py) calls it with Ape's provider and account; the devnet, the
tests and the benches call `deploy_contracts` with an anvil's URL, in process.

Every owned contract (Staking, ComputeMarket, GPUComputeReward, ConsensusReward) ends owned by
the Timelock (snekmate's timelock controller, the deployer its proposer and executor);
ComputeConsensus stays with the deployer until `bootstrap`, which gives its ownership up. The
record, `deployments/<name>.json`, maps contract names to addresses and keeps the chain id, the
deployer and the block of each deployment; each deployable's ABI goes to `abi/<Contract>.json`.
Run again, it reuses every recorded contract that still has code on the chain (a fork of a
deployed chain included) and deploys only what is missing; ``fresh`` deploys everything anew.
"""

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.types import RPCEndpoint

from offchain.chain.artifacts import DEFAULT_BUILD_MANIFEST, Artifact, export_abi, load_artifacts
from offchain.chain.chain_client import (
    DEFAULT_ABI_DIR,
    DEFAULT_DEPLOYMENTS_DIR,
    ChainError,
    devnet_account,
)

log = logging.getLogger(__name__)

EMC = 10**18
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
DAY = 24 * 3600


@dataclass(frozen=True)
class DeploymentParameters:
    """Every figure the deployment sets. `LOCAL` for anvil and forks, `PUBLIC` elsewhere."""

    unbonding_period: int  # seconds a stake stays slashable after an unstake request
    withdraw_delay: int  # seconds between a market withdrawal request and its payout
    epoch_length: int  # heights per epoch: validator-set changes wait for a boundary
    timelock_delay: int  # seconds every governance call waits
    initial_supply: int = 1_000_000_000 * EMC
    min_validator_stake: int = 10_000 * EMC
    min_router_stake: int = 1_000 * EMC
    min_compute_stake: int = 100 * EMC
    market_fee_bps: int = 250  # the protocol fee on socket sales, 2.5 %
    emission_per_commit: int = 5 * EMC  # proof-of-compute emission released by each commit
    consensus_reward_per_commit: int = 10 * EMC  # split among each commit's signers by stake
    double_sign_penalty: int = 5_000 * EMC
    reporter_share_bps: int = 1_000  # the reporter of a double-sign gets 10 % of the slash


# A local withdraw delay longer than a devnet settlement round; a 60 s timelock on a devnet.
LOCAL = DeploymentParameters(
    unbonding_period=60, withdraw_delay=120, epoch_length=10, timelock_delay=60
)
PUBLIC = DeploymentParameters(
    unbonding_period=7 * DAY, withdraw_delay=2 * DAY, epoch_length=1_000, timelock_delay=2 * DAY
)


def parameters(local: bool, unbonding_period: int | None = None) -> DeploymentParameters:
    """Return the parameters of a local (anvil, fork) or other network, with overrides."""
    chosen = LOCAL if local else PUBLIC
    if unbonding_period is not None:
        chosen = dataclasses.replace(chosen, unbonding_period=unbonding_period)
    return chosen


@dataclass
class _Context:
    """What constructor arguments are made of: the parameters, the deployer, the contracts."""

    params: DeploymentParameters
    deployer: str
    addresses: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.addresses[name]


# Every deployable, in deployment order, with its constructor arguments. The treasury starts as
# the deployer (governance moves it with `set_treasury`); consensus and the reward contracts are
# wired once they are deployed (`_WIRING`). InvocationDigest answers the invocation digests under
# the market's EIP-712 domain, for integrators to check their signing against the chain.
CONSTRUCTORS: dict[str, Callable[[_Context], tuple]] = {
    "EMCToken": lambda c: (c.params.initial_supply,),
    "Staking": lambda c: (
        c["EMCToken"],
        c.params.unbonding_period,
        c.params.min_validator_stake,
        c.params.min_router_stake,
        c.params.min_compute_stake,
    ),
    "ComputeSocket": lambda c: (c["Staking"],),
    "ComputeMarket": lambda c: (
        c["EMCToken"],
        c["ComputeSocket"],
        c.deployer,
        c.params.market_fee_bps,
        c.params.withdraw_delay,
    ),
    "InvocationDigest": lambda c: (c["ComputeMarket"],),
    "GPUComputeReward": lambda c: (c["EMCToken"], c.params.emission_per_commit),
    "ConsensusReward": lambda c: (c["EMCToken"], c.params.consensus_reward_per_commit),
    "ComputeConsensus": lambda c: (
        c["Staking"],
        c["EMCToken"],
        c["ComputeMarket"],
        c["GPUComputeReward"],
        c["ConsensusReward"],
        c.params.epoch_length,
        c.params.double_sign_penalty,
        c.params.reporter_share_bps,
    ),
    "Timelock": lambda c: (c.params.timelock_delay, [c.deployer], [c.deployer], ZERO_ADDRESS),
}
DEPLOYABLES = tuple(CONSTRUCTORS)
# (contract, getter, setter, target): every settlement hook points at ComputeConsensus. Wired
# before the Timelock is deployed, while the deployer still owns the contracts.
_WIRING = (
    ("Staking", "slasher", "set_slasher", "ComputeConsensus"),
    ("ComputeMarket", "consensus", "set_consensus", "ComputeConsensus"),
    ("ComputeMarket", "reward_contract", "set_reward_contract", "GPUComputeReward"),
    ("GPUComputeReward", "consensus", "set_consensus", "ComputeConsensus"),
    ("ConsensusReward", "consensus", "set_consensus", "ComputeConsensus"),
)
_HANDED_TO_TIMELOCK = ("Staking", "ComputeMarket", "GPUComputeReward", "ConsensusReward")


class DeploymentError(ChainError):
    """A deployment record that cannot be used on the connected chain, or a step that failed."""


@dataclass
class DeploymentRecord:
    """What is deployed where, on one chain."""

    name: str
    chain_id: int
    contracts: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, int] = field(default_factory=dict)
    block: int = 0
    deployer: str = ""

    def to_json(self) -> dict:
        """Return the record as written to disk."""
        return {
            "network": self.name,
            "chain_id": self.chain_id,
            "block": self.block,
            "deployer": self.deployer,
            "contracts": self.contracts,
            "blocks": self.blocks,
        }

    @classmethod
    def from_json(cls, data: dict) -> "DeploymentRecord":
        """Return the record read from disk."""
        return cls(
            name=data["network"],
            chain_id=int(data["chain_id"]),
            contracts=dict(data.get("contracts", {})),
            blocks={k: int(v) for k, v in data.get("blocks", {}).items()},
            block=int(data.get("block", 0)),
            deployer=data.get("deployer", ""),
        )


def record_path(name: str, directory: Path = DEFAULT_DEPLOYMENTS_DIR) -> Path:
    """Return where the record of deployment ``name`` lives."""
    return Path(directory) / f"{name}.json"


def load_record(path: Path, chain_id: int, fresh: bool) -> DeploymentRecord:
    """Return the record at ``path`` for ``chain_id``, or an empty one when fresh or absent."""
    name = path.stem
    if fresh or not path.exists():
        return DeploymentRecord(name=name, chain_id=chain_id)
    record = DeploymentRecord.from_json(json.loads(path.read_text()))
    if record.chain_id != chain_id:
        raise DeploymentError(
            f"{path} records chain id {record.chain_id}, but the connected chain is {chain_id}; "
            "pass --fresh to deploy anew, or --name to keep a separate record"
        )
    return record


def save_record(record: DeploymentRecord, path: Path) -> None:
    """Write ``record`` to ``path`` (atomically, so a crash leaves the old record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n")
    temporary.replace(path)


@dataclass(frozen=True)
class Sender:
    """The deployer: its address, and ``send``, which submits a transaction from it.

    ``send`` takes ``{"data": ...}`` plus ``"to"`` for a call (none for a deployment), fills in
    nonce, gas and fees, signs, submits and returns the transaction hash.
    """

    address: str
    send: Callable[[dict], object]


def web3_sender(w3: Web3, account: LocalAccount | str) -> Sender:
    """Return a `Sender` for a local key, or for an address the node signs for (anvil's own)."""
    if isinstance(account, str):
        address = Web3.to_checksum_address(account)
        return Sender(address, lambda tx: w3.eth.send_transaction({**tx, "from": address}))
    # A web3 of its own over the same connection, so the caller's web3 signs nothing.
    signing = Web3(w3.provider)
    signing.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
    return Sender(
        account.address,
        lambda tx: signing.eth.send_transaction({**tx, "from": account.address}),
    )


def deploy(
    w3: Web3,
    sender: Sender,
    record_file: Path,
    abi_dir: Path = DEFAULT_ABI_DIR,
    params: DeploymentParameters = LOCAL,
    fresh: bool = False,
    echo: Callable[[str], None] = log.info,
    manifest: Path = DEFAULT_BUILD_MANIFEST,
    timeout: float = 120,
) -> DeploymentRecord:
    """Deploy what the record at ``record_file`` lacks, wire it, hand it over, save the record.

    Writes the record and every deployable's ABI under ``abi_dir``; returns the record. Raises
    ``ArtifactError`` for a missing or stale build and ``DeploymentError`` for a record of
    another chain or a step the chain refused.
    """
    artifacts = load_artifacts(DEPLOYABLES, manifest)
    record = load_record(Path(record_file), w3.eth.chain_id, fresh)
    record.deployer = sender.address
    run = _Deployment(w3, sender, record, artifacts, params, echo, timeout)
    for name in DEPLOYABLES:
        if name != "Timelock":
            run.ensure_deployed(name)
    run.wire()  # while the deployer still owns what it wires
    run.ensure_deployed("Timelock")
    run.hand_to_timelock()
    save_record(record, Path(record_file))
    for name in DEPLOYABLES:
        export_abi(artifacts[name], Path(abi_dir))
    return record


def deploy_contracts(
    url: str,
    fresh: bool = False,
    name: str = "local",
    deployments_dir: Path = DEFAULT_DEPLOYMENTS_DIR,
    abi_dir: Path = DEFAULT_ABI_DIR,
    timeout: float = 600,
) -> dict:
    """Deploy (or reuse) the contracts on the anvil at ``url`` and return the record.

    In process, from devnet account 0 (the deployer `ape run deploy` uses on a local network),
    with the local parameters. ``timeout`` bounds each receipt wait (and each answer, to 60 s).
    """
    # The chain id is asked before every transaction and call; it cannot change under us.
    provider = Web3.HTTPProvider(
        url,
        request_kwargs={"timeout": min(timeout, 60)},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    w3 = Web3(provider)
    record = deploy(
        w3,
        web3_sender(w3, devnet_account(0)),
        record_path(name, deployments_dir),
        abi_dir,
        LOCAL,
        fresh=fresh,
        echo=log.debug,
        timeout=timeout,
    )
    return record.to_json()


class _Deployment:
    """One run of `deploy`: the connection, the deployer, the record and the contracts so far."""

    def __init__(self, w3, sender, record, artifacts, params, echo, timeout) -> None:
        self.w3: Web3 = w3
        self.sender: Sender = sender
        self.record: DeploymentRecord = record
        self.artifacts: dict[str, Artifact] = artifacts
        self.context = _Context(params, sender.address, {})
        self.echo = echo
        self.timeout = timeout
        self.contracts: dict[str, Contract] = {}

    def contract(self, name: str) -> Contract:
        if name not in self.contracts:
            abi = self.artifacts[name].abi
            self.contracts[name] = self.w3.eth.contract(address=self.context[name], abi=abi)
        return self.contracts[name]

    def ensure_deployed(self, name: str) -> None:
        """Reuse the recorded ``name`` if it has code on this chain, else deploy and record it."""
        address = self.record.contracts.get(name)
        if address and self.w3.eth.get_code(Web3.to_checksum_address(address)):
            self.context.addresses[name] = Web3.to_checksum_address(address)
            self.echo(f"{name:<18} {address}  (already deployed)")
            return
        artifact = self.artifacts[name]
        args = CONSTRUCTORS[name](self.context)
        inputs = artifact.constructor_inputs
        if len(args) != len(inputs):
            wanted = ", ".join(i.get("name", "?") for i in inputs)
            raise DeploymentError(
                f"{name}'s constructor takes {len(inputs)} arguments ({wanted}), the deployment "
                f"gives {len(args)}: update CONSTRUCTORS in offchain/chain/deploy.py"
            )
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = self.send(name, {"data": factory.constructor(*args).data_in_transaction})
        address, block = receipt["contractAddress"], receipt["blockNumber"]
        self.context.addresses[name] = address
        self.record.contracts[name] = address
        self.record.blocks[name] = block
        self.record.block = max(self.record.block, block)
        self.echo(f"{name:<18} {address}  (deployed in block {block})")

    def call(self, name: str, function: str, *args) -> dict:
        """Send ``name.function(*args)`` from the deployer and return the receipt."""
        contract = self.contract(name)
        data = contract.encode_abi(function, args=list(args))
        return self.send(f"{name}.{function}", {"to": contract.address, "data": data})

    def send(self, what: str, tx: dict) -> dict:
        try:
            tx_hash = self.sender.send(tx)
        except ContractLogicError as error:
            raise DeploymentError(f"{what} reverted: {error}") from error
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout)
        if receipt["status"] != 1:
            raise DeploymentError(f"{what} reverted in block {receipt['blockNumber']}")
        return receipt

    def wire(self) -> None:
        """Point every settlement hook at its contract, skipping what is already wired."""
        for name, getter, setter, target in _WIRING:
            wired = self.contract(name).functions[getter]().call()
            address = self.context[target]
            if wired == ZERO_ADDRESS:
                self.call(name, setter, address)
                self.echo(f"wired {name}.{setter} -> {address}")
            elif wired != address:
                self.echo(f"warning: {setter} already points at {wired}, not {address}")

    def hand_to_timelock(self) -> None:
        """Transfer every owned contract still held by the deployer to the timelock."""
        timelock = self.context["Timelock"]
        for name in _HANDED_TO_TIMELOCK:
            current = self.contract(name).functions.owner().call()
            if current == self.sender.address:
                self.call(name, "transfer_ownership", timelock)
                self.echo(f"{name} owner -> Timelock {timelock}")
            elif current != timelock:
                self.echo(f"warning: {name} is owned by {current}")
