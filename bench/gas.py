"""Gas of the staking operations, measured on a fresh anvil with the real deployment, and where
the gas of a consensus commit goes.

    .venv/bin/python -m bench.gas [--quick] [--results-dir DIR]

Prints a table and writes bench/results/gas.json (key `staking_gas`). The baseline in the same
run is one ERC-20 transfer of EMC. It takes seconds, so `--quick` measures the same.
`commit_breakdown` splits a commit transaction's gas by a call trace (anvil's callTracer): the
signature check (the EIP-2537 and SHA-256 precompiles that hash-to-curve and the pairing call),
the non-signers (the call to the validator set's program, which adds each non-signer's negated
key with one G1ADD and sums their power), market settle, reward roots (GPUComputeReward),
consensus reward (ConsensusReward, which a commit no longer calls: it books lazily), registry
(Staking), the transaction's intrinsic, calldata and access-list cost, and the rest, spent in
ComputeConsensus itself (storage, the digest, the log). `bench.settlement_gas` records it per
validator count as `commit_gas_breakdown`, and `main` prints the recorded breakdown.
"""

import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from offchain.chain.anvil import start_anvil
from offchain.chain.chain_client import ChainClient, devnet_account
from offchain.chain.deploy import deploy_contracts
from offchain.crypto import bls

from ._common import bench_parser, write_json

RESULTS_FILE = "gas.json"
EMC = 10**18


def measure_staking_gas() -> dict[str, int]:
    """Return the gas of each staking operation on a fresh chain."""
    with start_anvil() as anvil, tempfile.TemporaryDirectory() as tmp:
        deploy_contracts(anvil.url, fresh=True, deployments_dir=Path(tmp))
        chain = ChainClient(anvil.url, deployments_dir=Path(tmp))
        token, staking = chain["EMCToken"], chain["Staking"]
        deployer, validator, other = devnet_account(0), devnet_account(1), devnet_account(2)
        amount = staking.functions.min_stake(1).call()
        gas = {}
        gas["erc20_transfer"] = chain.transact(
            deployer, token.functions.transfer(validator.address, 2 * amount)
        ).gas_used
        chain.transact(deployer, token.functions.transfer(other.address, 1))
        chain.transact(validator, token.functions.approve(staking.address, 2 * amount))
        gas["stake_first"] = chain.transact(validator, staking.functions.stake(1, amount)).gas_used
        gas["stake_top_up"] = chain.transact(validator, staking.functions.stake(1, amount)).gas_used
        secret = bls.keygen(b"bench-validator")
        call = staking.functions.register_validator(
            bls.pubkey_to_eip2537(bls.public_key(secret)),
            bls.signature_to_eip2537(bls.prove_possession(secret, validator.address)),
        )
        gas["register_validator_with_pop"] = chain.transact(validator, call).gas_used
        gas["request_unstake"] = chain.transact(
            validator, staking.functions.request_unstake(amount)
        ).gas_used
        chain.w3.provider.make_request(
            "evm_increaseTime", [staking.functions.unbonding_period().call()]
        )
        chain.w3.provider.make_request("evm_mine", [])
        gas["withdraw"] = chain.transact(validator, staking.functions.withdraw()).gas_used
        return gas


# EIP-2537 precompiles (0x0b-0x11), SHA-256 (0x02, expand_message_xmd) and MODEXP (0x05, the
# field reduction of hash-to-field).
SIGNATURE_PRECOMPILES = {f"0x{n:040x}" for n in [2, 5, *range(0x0B, 0x12)]}


def calldata_gas(data: bytes) -> int:
    """Return the EIP-2028 calldata cost of ``data``."""
    return sum(4 if b == 0 else 16 for b in data)


def access_list_gas(entries) -> int:
    """Return the EIP-2930 up-front cost of an access list."""
    return sum(2_400 + 1_900 * len(entry["storageKeys"]) for entry in entries)


def commit_breakdown(chain: ChainClient, tx_hash: str) -> dict[str, int]:
    """Split a ComputeConsensus.commit transaction's gas by where it is spent."""
    trace = chain.w3.provider.make_request(
        "debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}]
    )["result"]
    # The set that sealed the commit: the epoch current in the block before it.
    block = chain.w3.eth.get_transaction_receipt(tx_hash)["blockNumber"] - 1
    consensus = chain["ComputeConsensus"].functions
    epoch = consensus.current_epoch().call(block_identifier=block)
    data_contract = consensus.validator_set(epoch).call(block_identifier=block)
    targets = {
        data_contract.lower(): "non_signers",
        chain["ComputeMarket"].address.lower(): "market_settle",
        chain["GPUComputeReward"].address.lower(): "reward_roots",
        chain["ConsensusReward"].address.lower(): "consensus_reward",
        chain["Staking"].address.lower(): "registry",
    }
    parts = dict.fromkeys(
        [
            "signature_check",
            "non_signers",
            "market_settle",
            "reward_roots",
            "consensus_reward",
            "registry",
        ],
        0,
    )
    children = 0
    for call in trace.get("calls", []):
        used = int(call["gasUsed"], 16)
        to = call["to"].lower()
        if to in SIGNATURE_PRECOMPILES:
            parts["signature_check"] += used
        elif to in targets:
            parts[targets[to]] += used
        else:  # the identity precompile (Vyper's memory copies) and anything else
            parts.setdefault("other_calls", 0)
            parts["other_calls"] += used
        children += used
    tx = chain.w3.eth.get_transaction(tx_hash)
    intrinsic = (
        21_000 + calldata_gas(bytes(tx["input"])) + access_list_gas(tx.get("accessList", []))
    )
    total = chain.w3.eth.get_transaction_receipt(tx_hash)["gasUsed"]
    parts["intrinsic_calldata_access_list"] = intrinsic
    parts["consensus_own"] = total - intrinsic - children
    parts["total"] = total
    return parts


def main(argv: list[str] | None = None) -> None:
    """Measure, print the table and merge the figures into bench/results/gas.json."""
    args = bench_parser(__doc__).parse_args(argv if argv is not None else [])
    gas = measure_staking_gas()
    table = Table(title="Staking gas (anvil, fresh deployment)")
    table.add_column("operation")
    table.add_column("gas", justify="right")
    table.add_column("x ERC-20 transfer", justify="right")
    for operation, used in gas.items():
        table.add_row(operation, f"{used:,}", f"{used / gas['erc20_transfer']:.2f}")
    Console().print(table)
    path = write_json(args.results_dir / RESULTS_FILE, {"staking_gas": gas}, merge=True)
    print(f"wrote {path}")
    breakdown = json.loads(path.read_text()).get("commit_gas_breakdown", {})
    if breakdown:
        sizes = sorted(breakdown, key=int)
        parts = [p for p in breakdown[sizes[0]] if p != "total"]
        table = Table(title="Where commit gas goes (bench.settlement_gas, by validator count)")
        table.add_column("part")
        for size in sizes:
            table.add_column(size, justify="right")
        for part in [*parts, "total"]:
            table.add_row(part, *(f"{breakdown[size].get(part, 0):,}" for size in sizes))
        Console().print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
