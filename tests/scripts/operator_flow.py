"""Run every operator script once, in an operator's order, against a running anvil.

    .venv/bin/python -m tests.scripts.operator_flow URL WORKDIR

One process for the whole flow (Ape starts once; each script is invoked through click as `ape run`
would), connected to the anvil at URL through ape-foundry's host setting. Prints one JSON object a
line: {"step", "command", "exit_code", "output"}. Refusals are steps too: they must fail cleanly.
"""

import json
import os
import sys
import time
from importlib import import_module
from pathlib import Path

from eth_utils import to_checksum_address

from offchain.chain.chain_client import ChainClient, devnet_account
from offchain.chain.settlement import submit_commit
from offchain.crypto import bls
from offchain.protocol.billing import build_billing_tree, proof_document
from offchain.protocol.commit import Commit
from offchain.protocol.rewards import rewards_tree, split_invocation

BLS_SEED_HEX = "5e" * 32
EMC = 10**18
NETWORK = ["--network", "ethereum:local:foundry"]


def steps(node: str, user: str, validator: str, workdir: Path) -> list[tuple[str, str, list[str]]]:
    """Return (step name, script, arguments) in the order an operator runs them."""
    return [
        ("deploy", "deploy", ["--abi-dir", str(workdir / "abi")]),
        ("fund node", "send_emc", ["--account", "TEST::0", "--to", node, "--amount", "500"]),
        ("fund user", "send_emc", ["--account", "TEST::0", "--to", user, "--amount", "200"]),
        (
            "fund validator",
            "send_emc",
            ["--account", "TEST::0", "--to", validator, "--amount", "10000"],
        ),
        (
            "mint unstaked (refused)",
            "mint_socket",
            [
                "--account",
                "TEST::6",
                "--workload",
                "matmul-f32",
                "--capacity",
                "50",
                "--price",
                "0.001",
            ],
        ),
        (
            "stake below minimum (refused)",
            "stake",
            ["--account", "TEST::7", "--role", "router", "--amount", "1"],
        ),
        ("stake", "stake", ["--account", "TEST::6", "--role", "compute", "--amount", "100"]),
        (
            "register node",
            "register_node",
            [
                "--account",
                "TEST::6",
                "--gpu",
                "RTX 4090",
                "--memory-mb",
                "24576",
                "--storage-gb",
                "500",
                "--workload",
                "matmul-f32",
                "--workload",
                "mlp-infer",
            ],
        ),
        (
            "mint socket",
            "mint_socket",
            [
                "--account",
                "TEST::6",
                "--workload",
                "matmul-f32",
                "--capacity",
                "50",
                "--price",
                "0.001",
                "--days",
                "30",
                "--invocations",
                "1000",
                "--uri",
                "ipfs://matmul-f32-socket",
                "--serving",
                "open-staked",
            ],
        ),
        (
            "list socket",
            "list_socket",
            ["--account", "TEST::6", "--token-id", "1", "--price", "40"],
        ),
        ("buy socket", "buy_socket", ["--account", "TEST::7", "--token-id", "1"]),
        (
            "relist sold socket (refused)",
            "list_socket",
            ["--account", "TEST::6", "--token-id", "1", "--price", "41"],
        ),
        ("deposit with permit", "deposit", ["--account", "TEST::7", "--amount", "25", "--permit"]),
        ("request withdrawal", "withdraw", ["--account", "TEST::7", "--request", "10"]),
        ("withdraw early (refused)", "withdraw", ["--account", "TEST::7"]),
        ("wait out the delay", "@time", ["121"]),
        ("withdraw before a commit (refused)", "withdraw", ["--account", "TEST::7"]),
        ("commit bills the user 2 EMC", "@settle", [user, node, "2"]),
        (
            "withdraw",
            "withdraw",
            ["--account", "TEST::7", "--proof-file", str(workdir / "billing-proof.json")],
        ),
        (
            "claim an inflated amount (refused)",
            "claim_rewards",
            ["--account", "TEST::6", "--proof-file", str(workdir / "inflated-proof.json")],
        ),
        (
            "claim rewards",
            "claim_rewards",
            ["--account", "TEST::6", "--proof-file", str(workdir / "earned-proof.json")],
        ),
        ("request the rest", "withdraw", ["--account", "TEST::7", "--request", "13"]),
        ("wait out the delay again", "@time", ["121"]),
        ("commit 2 bills nothing new", "@settle_again", []),
        ("withdraw without proof (refused)", "withdraw", ["--account", "TEST::7"]),
        (
            "withdraw with proof",
            "withdraw",
            ["--account", "TEST::7", "--proof-file", str(workdir / "billing-proof.json")],
        ),
        (
            "stake validator",
            "stake",
            ["--account", "TEST::1", "--role", "validator", "--amount", "10000"],
        ),
        (
            "register validator",
            "register_validator",
            ["--account", "TEST::1", "--bls-seed-hex", BLS_SEED_HEX],
        ),
        ("position", "position", ["--account", "TEST::7"]),
        ("unstake", "unstake", ["--account", "TEST::6", "--amount", "100"]),
        ("withdraw stake early (refused)", "unstake", ["--account", "TEST::6", "--withdraw"]),
    ]


def settle(url: str, workdir: Path, user: str, node: str, spent: int) -> str:
    """Settle one batch billing ``user`` through a real quorum-signed commit; write its proof.

    A one-validator set (anvil account 12, staked and registered here) seals height 1.
    """
    client = ChainClient(url, deployments_dir=workdir / "deployments", abi_dir=workdir / "abi")
    token, staking = client["EMCToken"], client["Staking"]
    owner, validator = devnet_account(0), devnet_account(12)
    stake = staking.functions.min_stake(1).call()
    client.transact(owner, token.functions.transfer(validator.address, stake))
    client.transact(validator, token.functions.approve(staking.address, stake))
    client.transact(validator, staking.functions.stake(1, stake))
    secret = bls.keygen(b"operator-flow-validator")
    client.transact(
        validator,
        staking.functions.register_validator(
            bls.pubkey_to_eip2537(bls.public_key(secret)),
            bls.signature_to_eip2537(bls.prove_possession(secret, validator.address)),
        ),
    )
    client.transact(owner, client["ComputeConsensus"].functions.bootstrap())
    ledger = {user: spent}
    root = build_billing_tree(ledger)[0].root
    # The billed EMC pays the compute node 90 % and the router (the deployer here) 10 %.
    router_cut, node_cut = split_invocation(spent)
    earned = rewards_tree({node: node_cut, owner.address: router_cut})
    commit = Commit(
        height=1,
        batch_root=b"\x01" * 32,
        billing_root=root,
        rewards_root=earned.root,
        rewards_total=earned.total,
        billed_total=spent,
    )
    submit_commit(client, commit, {0: secret}, validator)
    (workdir / "billing-proof.json").write_text(json.dumps(proof_document(ledger, user)))
    for name, cumulative in (("earned-proof.json", node_cut), ("inflated-proof.json", spent)):
        document = {
            "account": node,
            "cumulative": cumulative,
            "proof": ["0x" + p.hex() for p in earned.proofs[to_checksum_address(node)]],
        }
        (workdir / name).write_text(json.dumps(document))
    return f"(commit 1: {spent} wei billed to {user}, billing root 0x{root.hex()})\n"


def settle_again(url: str, workdir: Path) -> str:
    """Commit height 2 with commit 1's roots (nothing new billed), sealed by the same validator,
    which also seals itself as height 1's signer."""
    client = ChainClient(url, deployments_dir=workdir / "deployments", abi_dir=workdir / "abi")
    consensus = client["ComputeConsensus"]
    market, gpu_reward = client["ComputeMarket"], client["GPUComputeReward"]
    commit = Commit(
        height=2,
        batch_root=b"\x02" * 32,
        billing_root=market.functions.billing_root().call(),
        rewards_root=gpu_reward.functions.rewards_root().call(),
        rewards_total=gpu_reward.functions.rewards_total().call(),
        billed_total=0,
        parent_signers=1,
    )
    submit_commit(client, commit, {0: bls.keygen(b"operator-flow-validator")}, devnet_account(12))
    assert consensus.functions.last_height().call() == 2
    return "(commit 2: nothing new billed)\n"


def main(url: str, workdir: Path) -> None:
    """Run the flow against the anvil at ``url``, keeping records and ABIs under ``workdir``."""
    os.environ["APE_FOUNDRY_HOST"] = url
    from ape import accounts
    from click.testing import CliRunner

    from offchain.chain.anvil import rpc

    node, user, validator = (accounts.test_accounts[i].address for i in (6, 7, 1))
    record = ["--deployments-dir", str(workdir / "deployments")]
    runner = CliRunner()
    for name, script, args in steps(node, user, validator, workdir):
        started = time.monotonic()
        if script == "@settle":
            output, code = settle(url, workdir, args[0], args[1], int(args[2]) * EMC), 0
        elif script == "@settle_again":
            output, code = settle_again(url, workdir), 0
        elif script == "@time":
            rpc(url, "evm_increaseTime", [int(args[0])])
            rpc(url, "evm_mine")
            output, code = f"(anvil: time +{args[0]} s)\n", 0
        else:
            command = import_module(f"scripts.{script}").cli
            result = runner.invoke(command, [*NETWORK, *record, *args])
            output, code = result.output, result.exit_code
        line = {
            "step": name,
            "command": f"ape run {script} {' '.join(args)}",
            "exit_code": code,
            "output": output,
            "seconds": round(time.monotonic() - started, 2),
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
