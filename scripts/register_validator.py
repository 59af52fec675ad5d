"""Register a staked validator's BLS12-381 key with its proof of possession.

    ape run register_validator --network ethereum:local:foundry --account TEST::1 \
        --bls-seed-hex 5e5e...

The BLS secret key is derived from a 32-byte seed kept by the operator (hex on the command line or
in a file); only the public key and the proof of possession go on-chain.
"""

from pathlib import Path

import click
from ape.cli import network_option

from scripts._operator import (
    OperatorCommand,
    chain_refusal,
    load_contracts,
    operator_options,
    require_account,
)


def _seed(seed_hex: str | None, seed_file: Path | None) -> bytes:
    if (seed_hex is None) == (seed_file is None):
        raise click.UsageError("give exactly one of --bls-seed-hex or --bls-seed-file")
    text = seed_hex if seed_hex is not None else seed_file.read_text().strip()
    try:
        seed = bytes.fromhex(text.removeprefix("0x"))
    except ValueError as error:
        raise click.BadParameter("the BLS seed must be hex") from error
    if len(seed) < 32:
        raise click.BadParameter("the BLS seed must be at least 32 bytes")
    return seed


@click.command(cls=OperatorCommand)
@network_option()
@operator_options
@click.option("--bls-seed-hex", default=None, help="The BLS key seed, hex (32+ bytes).")
@click.option("--bls-seed-file", type=click.Path(path_type=Path, exists=True), default=None)
def cli(network, account, deployment_name, deployments_dir, bls_seed_hex, bls_seed_file):
    """Register the account's BLS public key, proven by possession."""
    from offchain.crypto import bls  # py-ecc takes a second to import: only this script needs it

    account = require_account(account)
    staking = load_contracts(network, deployment_name, deployments_dir)["Staking"]
    secret = bls.keygen(_seed(bls_seed_hex, bls_seed_file))
    public_key = bls.pubkey_to_eip2537(bls.public_key(secret))
    proof = bls.signature_to_eip2537(bls.prove_possession(secret, account.address))
    with chain_refusal("register validator"):
        staking.register_validator(public_key, proof, sender=account)
    click.echo(f"Registered validator {account.address}")
    click.echo(f"  BLS public key (G1, compressed): 0x{bls.public_key(secret).hex()}")
    click.echo(f"  validators registered:           {staking.validator_count()}")
