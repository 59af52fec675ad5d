"""`emc devnet`: the whole network on one machine, from a bare checkout.

It starts a local anvil, deploys and wires the contracts, and brings the devnet's actors
on-chain: 4 validators (staked, BLS keys registered with proofs of possession), 2 routers and 3
compute nodes (staked, capabilities declared). The routers and compute nodes also run as real
agent processes on loopback (``python -m offchain.routers`` and ``python -m
offchain.workers``, logs and ready files in the devnet's work directory): the two routers
mesh with each other, each compute node dials out to both routers and serves its
``DEMO_WORKLOADS``, and the routers read who is staked from the Staking contract
(``--chain-rpc``), as a real network's routers do: nothing is staked in their config. Each
agent's Ethereum key comes from its ``--eth-key-seed``, and the devnet stakes from that same
key, so the address a router or node proves in its identity binding is the address staked
on-chain. The agents start once the contracts are deployed and the actors staked (a router
checks the chain and reads the deployment record at start-up), each in a session of its own,
and ``Devnet.stop()`` stops them (one SIGTERM each) before anvil.

At start-up the devnet's user (anvil account ``USER_INDEX``) gets a socket for each workload
each compute node serves, minted by that node (``DEMO_WORKLOADS``, ``SOCKET_PRICE`` an
invocation), and escrows ``ESCROW`` in ComputeMarket. The routers run with
``--check-invocations`` and the compute nodes with the chain flags, so a router serves signed
orders only, checked against the chain's sockets and escrow, and a node prices each order from
its socket and signs a receipt with the key it staked.

Then it runs demo traffic through the network and on through settlement. The user signs a
``matmul-f32`` order for each request (``offchain/routers/router_client.py``), the requests
alternate between the routers and over the user's three ``matmul-f32`` sockets, and every answer
is checked: its receipt (this order's, signed by the socket's node, for this output, within the
order's price) and its output, with the workload's verifier. The first order is sent again to
the router that served it, which refuses the replay (``nonce-reused``). Meanwhile the devnet
takes the records the routers gossip as a validator does: a host of its own joins the routers'
gossip bound to validator-0's staked address and subscribes to the records topic
(``offchain/routers/record_feed.py``). Once a record has arrived for every served request (and
for nothing else), it checks each one against the chain (``check_record``), bills the batches
from them (each record's user, receipt price, node and router; its id in the batch root is the
record's EIP-712 digest), commits them on-chain under the validators' aggregate BLS seal, and
the nodes, routers and validators claim what they earned. In a real network the validator agents
check the records and agree on the batches with IBFT; until they join the devnet, it checks,
batches and seals itself.

The modules: ``devnet_params.py`` (sizes, amounts, timeouts), ``devnet_chain.py`` (the actors
on-chain, the demo market), ``devnet_agents.py`` (the agent processes), ``demo_traffic.py`` (the
signed orders and their answers), ``demo_records.py`` (the gossiped records, collected and
checked), ``demo_settlement.py`` (batches, commits, claims) and ``devnet_launch.py``
(``start_devnet`` and ``Devnet``). This module re-exports their public names.
"""

from offchain.devnet.demo_records import RecordsSeen, check_records
from offchain.devnet.demo_settlement import SettlementReport, run_demo_settlement
from offchain.devnet.demo_traffic import (
    Demand,
    DemoTraffic,
    Refused,
    Served,
    demo_demands,
    demo_inputs,
    send_demo_traffic,
)
from offchain.devnet.devnet_agents import DevnetAgents, read_gauge, start_agents, wait_for_agents
from offchain.devnet.devnet_chain import (
    Actor,
    DemoMarket,
    DemoSocket,
    agent_account,
    agent_seed,
    bring_actors_on_chain,
    open_market,
)
from offchain.devnet.devnet_launch import Devnet, start_devnet
from offchain.devnet.devnet_params import (
    AGENT_READY_TIMEOUT_S,
    COMPUTE_NODES,
    CONSENSUS_REWARD_POOL,
    DEFAULT_WORKDIR,
    DEMO_BATCHES,
    DEMO_SIZE,
    DEMO_WORKLOAD,
    DEMO_WORKLOADS,
    EMC,
    EMISSION_POOL,
    ESCROW,
    ETH_FOR_GAS,
    INVOCATIONS_PER_BATCH,
    LINK_TIMEOUT_S,
    RECORDS_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    ROUTERS,
    SOCKET_PRICE,
    USER_INDEX,
    VALIDATORS,
)

__all__ = [
    "AGENT_READY_TIMEOUT_S",
    "Actor",
    "COMPUTE_NODES",
    "CONSENSUS_REWARD_POOL",
    "DEFAULT_WORKDIR",
    "DEMO_BATCHES",
    "DEMO_SIZE",
    "DEMO_WORKLOAD",
    "DEMO_WORKLOADS",
    "Demand",
    "DemoMarket",
    "DemoSocket",
    "DemoTraffic",
    "Devnet",
    "DevnetAgents",
    "EMC",
    "EMISSION_POOL",
    "ESCROW",
    "ETH_FOR_GAS",
    "INVOCATIONS_PER_BATCH",
    "LINK_TIMEOUT_S",
    "RECORDS_TIMEOUT_S",
    "REQUEST_TIMEOUT_S",
    "ROUTERS",
    "RecordsSeen",
    "Refused",
    "SOCKET_PRICE",
    "Served",
    "SettlementReport",
    "USER_INDEX",
    "VALIDATORS",
    "agent_account",
    "agent_seed",
    "bring_actors_on_chain",
    "check_records",
    "demo_demands",
    "demo_inputs",
    "open_market",
    "read_gauge",
    "run_demo_settlement",
    "send_demo_traffic",
    "start_agents",
    "start_devnet",
    "wait_for_agents",
]
