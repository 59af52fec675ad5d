"""Protocol ids and gossip topics of the EMC network, defined in one place."""

from libp2p.custom_types import TProtocol

# A compute node opens this stream to a router after it dials out, sends its hello and load
# reports on it, and answers the router's pings on it.
NODE_CONTROL = TProtocol("/emc/node/1.0.0")
# A router opens this stream back over the node's own connection and keeps it as a session:
# requests are pipelined on it, and answers come back in any order, each naming its request.
WORK = TProtocol("/emc/work/2.0.0")
# Callers (users, gateways) and other routers hold a session of the same kind with a router.
INVOKE = TProtocol("/emc/invoke/2.0.0")
# Routers exchange summaries of their routing tables on this protocol. Since 2.0 each end's
# first frame is its own signed summary (the dialling end's first), which admits it as a staked
# router; 1.0 ends opened with a ping and were not checked.
MESH = TProtocol("/emc/mesh/2.0.0")

ALL_PROTOCOLS = (NODE_CONTROL, WORK, INVOKE, MESH)

# Gossipsub topics.
TOPIC_RECORDS = "emc/records/1"
TOPIC_COMMITS = "emc/commits/1"
TOPIC_REGISTRY = "emc/registry/1"
TOPIC_MESH = "emc/mesh/1"

ALL_TOPICS = (TOPIC_RECORDS, TOPIC_COMMITS, TOPIC_REGISTRY, TOPIC_MESH)
