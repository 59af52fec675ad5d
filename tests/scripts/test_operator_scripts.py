"""Every operator script, run once against anvil in an operator's order (see operator_flow.py).

The flow deploys, funds, stakes, declares a node, mints, lists and buys a socket, deposits with a
permit, withdraws after the delay, registers a validator with its BLS proof of possession, shows a
position and unstakes; on the way the chain refuses an unstaked mint, a stake below the minimum, an
early withdrawal and an early unstake withdrawal, and each refusal must end the script with one
clear error line. The chain state is then read back with plain web3.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from web3 import Web3

from offchain.chain.anvil import start_anvil

REPO = Path(__file__).resolve().parents[2]
EMC = 10**18


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """Run the whole flow once; return (steps by name, the anvil's web3, workdir)."""
    workdir = tmp_path_factory.mktemp("operator_flow")
    with start_anvil() as anvil:
        result = subprocess.run(
            [sys.executable, "-m", "tests.scripts.operator_flow", anvil.url, str(workdir)],
            cwd=REPO, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-4000:]
        steps = {}
        for line in result.stdout.splitlines():
            if line.startswith("{"):
                step = json.loads(line)
                steps[step["step"]] = step
        yield steps, Web3(Web3.HTTPProvider(anvil.url)), workdir


def contract(w3, workdir, name):
    record = json.loads((workdir / "deployments" / "local.json").read_text())
    abi = json.loads((workdir / "abi" / f"{name}.json").read_text())
    return w3.eth.contract(address=record["contracts"][name], abi=abi)


def ok(steps, name):
    step = steps[name]
    assert step["exit_code"] == 0, f"{step['command']}:\n{step['output']}"
    return step["output"]


def refused(steps, name, message):
    step = steps[name]
    assert step["exit_code"] == 1, f"{step['command']} should fail:\n{step['output']}"
    assert f"Error: {message}" in step["output"]


def test_flow__every_step_ran(flow):
    steps, _, _ = flow
    scripts = {
        step["command"].split()[2]
        for step in steps.values()
        if step["command"].startswith("ape run")
    }
    assert scripts >= {
        "deploy", "send_emc", "stake", "unstake", "register_validator", "register_node",
        "mint_socket", "list_socket", "buy_socket", "deposit", "withdraw", "position",
    }  # fmt: skip


def test_deploy__record_holds_market_and_sockets(flow):
    steps, w3, workdir = flow
    assert "ComputeMarket" in ok(steps, "deploy")
    record = json.loads((workdir / "deployments" / "local.json").read_text())
    assert set(record["contracts"]) >= {"EMCToken", "Staking", "ComputeSocket", "ComputeMarket"}
    assert contract(w3, workdir, "ComputeMarket").functions.fee_bps().call() == 250


def test_stake_and_register_node__node_active(flow):
    steps, w3, workdir = flow
    assert "roles:       compute" in ok(steps, "stake")
    assert "workloads: matmul-f32, mlp-infer" in ok(steps, "register node")
    staking = contract(w3, workdir, "Staking")
    node = w3.eth.accounts[6]
    assert staking.functions.node_workloads(node).call() == ["matmul-f32", "mlp-infer"]


def test_refusals__clear_one_line_errors(flow):
    steps, _, _ = flow
    refused(
        steps,
        "mint unstaked (refused)",
        "mint socket refused by the chain: socket: not an active compute node",
    )
    refused(
        steps,
        "stake below minimum (refused)",
        "stake refused by the chain: staking: stake below minimum",
    )
    refused(steps, "relist sold socket (refused)", "not the holder of socket #1")
    refused(
        steps,
        "withdraw early (refused)",
        "withdraw refused by the chain: market: withdraw delay not over",
    )
    refused(
        steps,
        "withdraw stake early (refused)",
        "withdraw refused by the chain: staking: still unbonding",
    )


def test_mint_list_buy__socket_changes_hands_with_fee(flow):
    steps, w3, workdir = flow
    minted = ok(steps, "mint socket")
    assert "Minted socket #1" in minted and "serving:     open-staked" in minted
    assert "protocol fee:      1 EMC (2.5 %)" in ok(steps, "list socket")
    assert "Bought socket #1 for 40 EMC" in ok(steps, "buy socket")
    sockets, token = contract(w3, workdir, "ComputeSocket"), contract(w3, workdir, "EMCToken")
    node, user, deployer = w3.eth.accounts[6], w3.eth.accounts[7], w3.eth.accounts[0]
    assert sockets.functions.ownerOf(1).call() == user
    assert tuple(sockets.functions.sockets(1).call())[:4] == ("matmul-f32", 50, 10**15, node)
    assert tuple(sockets.functions.serving_terms(1).call()) == (True, True)
    # node: 500 funded - 100 staked (pending unbonding at the end) + 39 from the sale
    # + its 90 % of the 2 EMC commit 1 billed, claimed
    assert token.functions.balanceOf(node).call() == 439 * EMC + 2 * EMC * 9 // 10
    # deployer: funded the flow's accounts (10,700) and the settling validator's stake (10,000),
    # and earned the 1 EMC protocol fee as treasury
    assert token.functions.balanceOf(deployer).call() == 10**9 * EMC - 20_700 * EMC + 1 * EMC


def test_deposit_withdraw__escrow_follows(flow):
    steps, w3, workdir = flow
    assert "escrow:         25 EMC" in ok(steps, "deposit with permit")
    assert "Requested 10 EMC" in ok(steps, "request withdrawal")
    assert "Withdrew 10 EMC (requested 10 EMC)" in ok(steps, "withdraw")
    token = contract(w3, workdir, "EMCToken")
    user = w3.eth.accounts[7]
    assert token.functions.balanceOf(user).call() == (200 - 40 - 25 + 10 + 13) * EMC
    assert token.functions.nonces(user).call() == 1, "the deposit used the permit"


def test_withdraw_with_proof__billed_user_leaves_with_the_rest(flow):
    steps, w3, workdir = flow
    refused(steps, "withdraw without proof (refused)", "a commit has billed this account")
    refused(
        steps,
        "withdraw before a commit (refused)",
        "withdraw refused by the chain: market: awaiting a commit",
    )
    assert "Withdrew 13 EMC (requested 13 EMC)" in ok(steps, "withdraw with proof")
    market = contract(w3, workdir, "ComputeMarket")
    user = w3.eth.accounts[7]
    assert market.functions.escrow(user).call() == 0
    assert market.functions.spent_settled(user).call() == 2 * EMC
    assert contract(w3, workdir, "EMCToken").functions.balanceOf(market.address).call() == 0


def test_register_validator__key_on_chain(flow):
    steps, w3, workdir = flow
    # the second: the settle step registered the validator that sealed commit 1
    assert "validators registered:           2" in ok(steps, "register validator")
    staking = contract(w3, workdir, "Staking")
    assert len(staking.functions.bls_public_key(w3.eth.accounts[1]).call()) == 128


def test_position_and_unstake__readable_summary(flow):
    steps, _, _ = flow
    position = ok(steps, "position")
    assert "escrow:            0 EMC (spent settled 2 EMC)" in position
    assert "earnings claimed:  0 EMC" in position
    assert "#1: matmul-f32, 50 E, 0.001 EMC/invocation" in position
    assert "pending:         100 EMC" in ok(steps, "unstake")


def test_claim_rewards__node_paid_its_share_of_the_commit(flow):
    steps, w3, workdir = flow
    refused(
        steps,
        "claim an inflated amount (refused)",
        "claim refused by the chain: reward: invalid proof",
    )
    assert "Claimed for" in ok(steps, "claim rewards")
    gpu_reward = contract(w3, workdir, "GPUComputeReward")
    node = w3.eth.accounts[6]
    # 90 % of the 2 EMC billed by commit 1; the router keeps 10 %
    assert gpu_reward.functions.claimed(node).call() == 2 * EMC * 9 // 10
