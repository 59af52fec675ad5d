"""Protocol ids and gossip topics of the EMC network, defined in one place."""

from libp2p.custom_types import TProtocol

# A compute node's link to a router: the node opens this stream after it dials out and sends
# its hello on it; from then on the router pipelines requests and pings on it, and the node
# sends answers (in any order, each naming its request), pongs and load reports. In 1.0 the
# router opened a second stream per node for work (``/emc/work/2.0.0``), paid for again after
# each idle minute: with thousands of nodes almost every request paid for a new stream.
# Since 3.0 a request carries the user's signed invocation order and an answer the node's
# signed receipt (``net/messages.py``); 2.0 ends carried neither and cannot be served.
NODE_CONTROL = TProtocol("/emc/node/3.0.0")
# Callers (users, gateways) and other routers hold a session of the same kind with a router.
# 3.0 as for NODE_CONTROL: signed orders in, signed receipts out.
INVOKE = TProtocol("/emc/invoke/3.0.0")
# Routers exchange summaries of their routing tables on this protocol. Since 2.0 each end's
# first frame is its own signed summary (the dialling end's first), which admits it as a staked
# router; 1.0 ends opened with a ping and were not checked.
MESH = TProtocol("/emc/mesh/2.0.0")

# A peer that is not a mesh neighbour (a validator) asks to gossip: it presents the binding of a
# staked router or validator address, and only then may it open gossipsub with the router.
GOSSIP_JOIN = TProtocol("/emc/gossip-join/1.0.0")

ALL_PROTOCOLS = (NODE_CONTROL, INVOKE, MESH, GOSSIP_JOIN)

# Gossipsub topics.
# Version 2 carries countersigned invocation records (``messages.RecordBatch``); version 1
# carried unsigned route records that nothing consumed.
TOPIC_RECORDS = "emc/records/2"
TOPIC_COMMITS = "emc/commits/1"
TOPIC_REGISTRY = "emc/registry/1"
TOPIC_MESH = "emc/mesh/1"

ALL_TOPICS = (TOPIC_RECORDS, TOPIC_COMMITS, TOPIC_REGISTRY, TOPIC_MESH)
