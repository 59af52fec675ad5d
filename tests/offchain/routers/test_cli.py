"""The `emc router` and `emc worker` commands from config files: serve, log JSON, stop."""

import json
import sys

import trio
from libp2p.peer.id import ID

from offchain.routers.router_client import caller, invoke
from offchain.runtime.spawn import AgentProcess, seed_hex, stop_all
from tests.offchain.routers.routernet import eth_address, metric, wait_until

# The same click commands `emc router` and `emc worker` run (offchain/cli.py registers them).
ENTRY = {
    "router": [sys.executable, "-m", "offchain.routers"],
    "worker": [sys.executable, "-m", "offchain.workers"],
}


def emc(tmp_path, name: str, command: str, config: str) -> AgentProcess:
    path = tmp_path / f"{name}.toml"
    path.write_text(config)
    ready = tmp_path / f"{name}.json"
    argv = [*ENTRY[command], "--config", str(path), "--ready-file", str(ready)]
    return AgentProcess(name, argv, ready, tmp_path / f"{name}.log")


async def test_emc_router_and_worker__from_config_files__serve_and_stop_on_sigterm(tmp_path):
    router = emc(
        tmp_path,
        "cli-router",
        "router",
        f'metrics_port = 0\nping_interval_s = 1.0\nstaked = ["{eth_address("cli-node")}"]\n'
        f'identity_seed = "{seed_hex("cli-router")}"\n',
    )
    processes = [router]
    try:
        router.start()
        info = await trio.to_thread.run_sync(router.wait_ready)
        node = emc(
            tmp_path,
            "cli-node",
            "worker",
            f'routers = ["{info["addrs"][0]}"]\nworkloads = ["echo", "upper=echo"]\n'
            f'eth_key_seed = "{seed_hex("cli-node")}"\nmetrics_port = 0\n',
        )
        processes.append(node.start())
        node_info = await trio.to_thread.run_sync(node.wait_ready)
        await wait_until(lambda: metric(router, "emc_router_nodes") == 1, 30, "the node to link")
        async with caller([info["addrs"][0]]) as host:
            reply = await invoke(host, ID.from_base58(info["peer_id"]), "upper", b"cfg", 10)
        assert reply.ok and reply.node == node_info["peer_id"]
        assert "staked=True" in router.log_text()  # the config's staked list took effect
        for process in (node, router):
            assert process.stop() == 0
        for process, peer in ((router, info["peer_id"]), (node, node_info["peer_id"])):
            lines = [
                json.loads(line) for line in process.log_text().splitlines() if line.startswith("{")
            ]
            assert lines and all(line["peer"] == peer for line in lines)
            assert any(line["msg"].endswith("stopped") for line in lines)
    finally:
        stop_all(processes)
