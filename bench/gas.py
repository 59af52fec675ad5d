"""Gas of the staking operations, measured on a fresh anvil with the real deployment.

    .venv/bin/python -m bench.gas

Prints a table and writes bench/results/gas.json (key `staking_gas`). The baseline in the same
run is one ERC-20 transfer of EMC.
"""

import json
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from offchain.chain.anvil import start_anvil
from offchain.chain.client import ChainClient, devnet_account
from offchain.chain.deploy import deploy_contracts
from offchain.crypto import bls

RESULTS = Path(__file__).parent / "results" / "gas.json"
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


def main() -> None:
    """Measure, print the table and merge the figures into bench/results/gas.json."""
    gas = measure_staking_gas()
    table = Table(title="Staking gas (anvil, fresh deployment)")
    table.add_column("operation")
    table.add_column("gas", justify="right")
    table.add_column("x ERC-20 transfer", justify="right")
    for operation, used in gas.items():
        table.add_row(operation, f"{used:,}", f"{used / gas['erc20_transfer']:.2f}")
    Console().print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["staking_gas"] = gas
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
