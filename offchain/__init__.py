"""EMC Protocol off-chain agents: validators, routers, compute nodes, gateway and client."""
