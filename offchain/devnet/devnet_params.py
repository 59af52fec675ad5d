"""The devnet's sizes, amounts and timeouts, with their units."""

from offchain.chain.anvil import REPO_ROOT

EMC = 10**18
VALIDATORS, ROUTERS, COMPUTE_NODES = 4, 2, 3
# Every node serves matmul-f32, which the demo traffic runs, plus one more workload. The user
# holds a socket on each workload of each node, minted by that node.
DEMO_WORKLOADS = (
    ["matmul-f32", "matmul-modp"],
    ["matmul-f32", "mlp-infer"],
    ["matmul-f32", "nbody-step"],
)
USER_INDEX = 11
ESCROW = 100 * EMC
SOCKET_PRICE = EMC // 100  # every demo socket's price: 0.01 EMC an invocation
EMISSION_POOL = 100_000 * EMC
CONSENSUS_REWARD_POOL = 10_000 * EMC
DEMO_BATCHES = 3
INVOCATIONS_PER_BATCH = 4
DEMO_WORKLOAD = "matmul-f32"
DEMO_SIZE = 64  # the demo multiplies 64 x 64 matrices: one metered unit each
# Where `emc devnet` keeps its agents' logs and ready files (git-ignored), unless told otherwise.
DEFAULT_WORKDIR = REPO_ROOT / ".emc" / "devnet"
# Compute nodes import PyTorch and Numba before they report ready; slow on a busy machine.
AGENT_READY_TIMEOUT_S = 120.0
LINK_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0
# Records reach the feed within a gossip heartbeat or two of the answers; bounded, not slept.
RECORDS_TIMEOUT_S = 60.0
ETH_FOR_GAS = 100 * 10**18
