"""docs/operator-guide.md, run as written, in its order, against a running devnet.

The devnet is the one `make run` serves (`emc devnet`), started here in this process as
tests/offchain/chain/test_client_and_devnet.py starts it, on a port of its own. The guide's
commands then run in one bash session from the repository root (tests/scripts/guide_session.py)
with the environment of a new terminal: no APE_FOUNDRY_HOST and the project's tools not on
PATH, so the guide's own first command must set them. The one change from the guide is the
devnet's URL in place of `http://127.0.0.1:8545`. Every command must exit as the guide shows and
print what it shows; every error example must be one line.
"""

import json
import re
from pathlib import Path

import pytest

from offchain.chain.chain_client import devnet_account
from offchain.devnet import start_devnet
from tests.scripts.guide_session import Command, matches, parse_guide, run_session, unmatched

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "operator-guide.md"
EMC = 10**18
USER = devnet_account(7).address
# The devnet's nodes mint sockets #1 to #6 for its demo user; the guide mints the next.
GUIDE_SOCKET = 7


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    """Run every command of the guide once against a fresh devnet; yield (devnet, results)."""
    net = start_devnet(port=None, workdir=tmp_path_factory.mktemp("devnet"))
    try:
        commands = parse_guide(GUIDE.read_text())
        yield net, run_session(commands, net.anvil.url, tmp_path_factory.mktemp("guide"))
    finally:
        net.stop()


def result_of(results, command_start: str):
    found = [r for r in results if r.command.text.startswith(command_start)]
    assert found, f"the guide runs no `{command_start}`"
    return found


def test_guide__every_command_runs_as_written(guide):
    _, results = guide
    assert len(results) == len(parse_guide(GUIDE.read_text()))
    failures = [
        result.report() + "\n-> " + "; ".join(problems)
        for result in results
        if (problems := result.problems())
    ]
    assert not failures, "\n\n".join(failures)


def test_guide__first_points_ape_at_the_devnet_and_deploy_reuses_it(guide):
    _, results = guide
    assert results[0].command.text.startswith("export APE_FOUNDRY_HOST=http://127.0.0.1:8545 ")
    (deploy,) = result_of(results, "ape run deploy")
    record = json.loads((REPO / "deployments" / "local.json").read_text())
    for name, address in record["contracts"].items():
        assert re.search(rf"^{name} +{address}  \(already deployed\)$", deploy.output, re.M), name
    assert "deployed in block" not in deploy.output and "Note:" not in deploy.output


def test_guide__each_kind_of_mistake_is_one_line(guide):
    _, results = guide
    errors = [r for r in results if r.command.is_error_example]
    said = "\n".join(r.output for r in errors)
    for mistake in (
        "has no ETH to pay for gas",  # a new agent key
        "Error: not enough EMC",  # tokens
        "socket: not an active compute node",  # the wrong role
        "Error: nothing to claim",
        "APE_FOUNDRY_HOST is not set",  # no chain
        "market: withdraw delay not over",
        "staking: still unbonding",
    ):
        assert mistake in said, mistake
    assert all(r.exit_code == 1 for r in errors)
    assert not any("Traceback" in r.output or "Call trace" in r.output for r in results)


def test_guide__left_the_chain_as_it_says(guide):
    net, results = guide
    token, sockets = net.chain["EMCToken"], net.chain["ComputeSocket"]
    market, staking = net.chain["ComputeMarket"], net.chain["Staking"]
    node = next(r for r in results if r.command.text == "echo $NODE").output.strip()
    assert sockets.functions.ownerOf(GUIDE_SOCKET).call() == USER
    assert sockets.functions.sockets(GUIDE_SOCKET).call()[3] == node  # the agent key's node
    assert market.functions.escrow(USER).call() == 25 * EMC
    assert market.functions.withdrawal_requested(USER).call() == 10 * EMC
    assert token.functions.balanceOf(USER).call() == 135 * EMC
    # the node staked 100, sold the socket for 40 less the 1 EMC fee, and is unbonding the stake
    assert token.functions.balanceOf(node).call() == (500 - 100 + 39) * EMC
    assert staking.functions.pending_withdrawal(node).call() == 100 * EMC
    assert staking.functions.node_workloads(node).call() == ["matmul-f32", "mlp-infer"]


def test_guide__position_tells_a_validator_what_it_was_paid_and_can_claim(guide):
    net, results = guide
    validator = net.actors[0]
    assert validator.account.address == devnet_account(1).address
    (position,) = result_of(results, "ape run position --account TEST::1 ")
    claimed = net.settlement.validator_rewards[validator.name]
    sealed = net.chain["ComputeConsensus"].functions.sealed_through().call()
    claimable = (
        net.chain["ConsensusReward"]
        .functions.claimable(validator.account.address, list(range(1, sealed + 1)), [0] * sealed)
        .call()
    )
    line = next(line for line in position.lines if "consensus rewards:" in line)
    assert line.split("consensus rewards:")[1].split(",") == [
        f" {claimed // EMC} EMC claimed (heights 1-{sealed})",
        f" {claimable // EMC} EMC claimable now",
    ]
    assert claimed > 0 and claimable == 0


def test_parse_guide__commands_outputs_and_continuations():
    text = "\n".join(
        [
            "```console",
            "$ echo a \\",
            "  b",
            "a b",
            "$ false",
            "Error: no",
            "```",
            "```text",
            "$ not run",
            "```",
        ]
    )
    assert parse_guide(text) == [
        Command(text="echo a \\\n  b", line=2, shown=["a b"]),
        Command(text="false", line=5, shown=["Error: no"]),
    ]
    assert parse_guide(text)[1].is_error_example


def test_matches__dots_stand_for_any_text():
    assert matches("Sent 1 EMC to 0x...", "Sent 1 EMC to 0xabc")
    assert not matches("Sent 1 EMC to 0x...", "Sent 2 EMC to 0xabc")
    assert unmatched(["a", "c"], ["a", "b", "c"]) is None
    assert unmatched(["c", "a"], ["a", "b", "c"]) == "a"
