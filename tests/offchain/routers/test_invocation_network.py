"""Signed invocations end to end: a router process that checks orders against a real anvil's
market, a compute node process that prices and signs receipts from it, and in this process two
lying nodes, callers, and two gossip subscribers (one staked, one not).

One network serves every case, in order: each refusal reaches the caller with its specific
reason and is billed nothing (no record is published for it); each served request yields exactly
one record on the records topic, which the staked subscriber receives and validates, and the
unstaked one never sees.
"""

import dataclasses

import multiaddr
import pytest
import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service.context import background_trio_service

from offchain.chain.identity import encode_binding, make_binding
from offchain.crypto.keys import generate_keypair
from offchain.net.host import identity_from_seed, make_host
from offchain.net.limits import node_limits
from offchain.net.streams import NET_ERRORS
from offchain.protocol import protocol_ids as protocols
from offchain.protocol.frames import FrameError
from offchain.protocol.invocation import (
    InvocationDomain,
    check_record,
    check_signatures,
    decode_receipt,
    record_digest,
    sign_receipt,
)
from offchain.protocol.invocation.invocation_errors import InvocationRejected
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER
from offchain.protocol.wire import Request, Response
from offchain.routers.gossip import MESHSUB_PROTOCOLS, decode_records, join_gossip
from offchain.routers.router_client import (
    InvocationClient,
    InvocationFailed,
    caller,
    order_for,
    sign_order,
    signed_request,
    verify_receipt,
)
from offchain.runtime.spawn import router_process, seed_hex, stop_all, worker_process
from offchain.workers.node import NodeAgent, NodeConfig, Pricing
from tests.offchain.routers.invocationnet import PRICE, ContractView
from tests.offchain.routers.routernet import metric
from tests.waiting import wait_until

ECHO, FORGED, LYING = "echo", "echo-forged", "echo-lying"
READY_S = 120


def _key(label: str):
    return generate_keypair(bytes.fromhex(seed_hex(label)))


class ForgingNode(NodeAgent):
    """Signs its receipts with a key that is not its staked one."""

    async def execute(self, request: Request) -> Response:
        response = await super().execute(request)
        if not response.ok:
            return response
        receipt = decode_receipt(response.receipt)
        forged = sign_receipt(_key("inv-net-other").private_key, receipt, self.pricing.domain)
        return dataclasses.replace(response, node_signature=forged)


class LyingNode(NodeAgent):
    """Returns other output than the output its receipt hashes."""

    async def execute(self, request: Request) -> Response:
        response = await super().execute(request)
        return dataclasses.replace(response, output=response.output + b"!")


async def _subscriber(label: str):
    host = make_host(identity_from_seed(bytes.fromhex(seed_hex(label + "-p2p"))), node_limits())
    gossipsub = GossipSub(
        list(MESHSUB_PROTOCOLS), 6, 4, 12, heartbeat_interval=1, spam_protection_enabled=False
    )
    return host, gossipsub, Pubsub(host, gossipsub, strict_signing=True), _key(label)


@pytest.fixture(scope="module")
def network(chain, tmp_path_factory):
    """A checking router process and an honest node process on ``chain``, and the market."""
    work = tmp_path_factory.mktemp("invocation-network")
    client = chain.client
    router_key, node_key = _key("inv-net-router"), _key("inv-net-node")
    router, node = chain.account(router_key.private_key), chain.account(node_key.private_key)
    chain.stake(router, ROLE_ROUTER)
    chain.stake(node, ROLE_COMPUTE)
    chain.declare(node, (ECHO,))
    liars = {}
    for label, workload in (("inv-net-forger", FORGED), ("inv-net-liar", LYING)):
        liar = chain.account(_key(label).private_key)
        chain.stake(liar, ROLE_COMPUTE)
        chain.declare(liar, (workload,))
        liars[workload] = liar
    user, other, delegate, stranger = (chain.account() for _ in range(4))
    sockets = {ECHO: chain.mint_socket(node, user.address, ECHO, PRICE)}
    for workload, liar in liars.items():
        sockets[workload] = chain.mint_socket(liar, user.address, workload, PRICE)
    other_socket = chain.mint_socket(node, other.address, ECHO, PRICE)
    chain.deposit(user, 100 * PRICE)
    chain.deposit(other, 2 * PRICE)  # two invocations' worth
    # Enough for every order served while the router has not yet read the revocation.
    chain.deposit(delegate, 1_000 * PRICE)
    chain_id = client.w3.eth.chain_id
    domain = InvocationDomain(chain_id, client["ComputeMarket"].address)
    on_chain = ["--chain-rpc", chain.anvil.url, "--deployment", str(chain.record),
                "--chain-id", str(chain_id)]  # fmt: skip
    validator = _key("inv-net-validator")
    router_agent = router_process(work, "router", [
        "--eth-key-seed", seed_hex("inv-net-router"), "--check-invocations",
        "--staked-validator", validator.address, "--metrics-port", "0", *on_chain,
    ]).start()  # fmt: skip
    processes = [router_agent]
    try:
        router_agent.wait_ready(READY_S)
        node_agent = worker_process(work, "node", [router_agent.info["addrs"][0]], [
            "--eth-key-seed", seed_hex("inv-net-node"), "--links", "1", "--workload", ECHO,
            *on_chain,
        ]).start()  # fmt: skip
        processes.append(node_agent)
        node_agent.wait_ready(READY_S)
        yield {
            "chain": chain,
            "domain": domain,
            "router": router_agent,
            "user": user,
            "other": other,
            "other_socket": other_socket,
            "delegate": delegate,
            "stranger": stranger,
            "sockets": sockets,
        }
    finally:
        stop_all(processes)


def _now(chain) -> int:
    return chain.client.w3.eth.get_block("latest")["timestamp"]


async def test_invocations__refusals_billed_nothing__each_served_one_record_staked_only(network):
    chain, domain, router = network["chain"], network["domain"], network["router"]
    user, sockets = network["user"], network["sockets"]
    router_addr, router_id = router.info["addrs"][0], ID.from_base58(router.info["peer_id"])
    view = ContractView(chain)
    stop = trio.Event()
    served: list[bytes] = []  # the request digest of each served request
    nonces = iter(range(1, 10_000))

    def order(signer=None, socket=ECHO, payload=b"in", **changes):
        signer = signer or user
        fields = {"nonce": next(nonces), "deadline": _now(chain) + 300, **changes}
        socket_id = sockets[socket] if isinstance(socket, str) else socket
        max_price = fields.pop("max_price", PRICE)
        workload = socket if isinstance(socket, str) else ECHO
        return order_for(signer.address, socket_id, workload, payload, max_price, **fields)

    async def send(client, the_order, signer=None, signing_domain=domain, payload=b"in"):
        signature = sign_order(signer or user, the_order, signing_domain)
        return await client.client.pool.request(
            router_id, signed_request(the_order, signature, payload, 20.0)
        )

    async def served_ok(client, the_order, signer=None):
        invoked = verify_receipt(await send(client, the_order, signer), the_order, domain)
        served.append(invoked.receipt.request_hash)
        return invoked

    async def refused(client, the_order, reason, signer=None, **kw):
        response = await send(client, the_order, signer, **kw)
        with pytest.raises((InvocationFailed, InvocationRejected)) as caught:
            verify_receipt(response, the_order, domain)
        got = getattr(caught.value, "code", None) or caught.value.reason
        assert got == reason, response.message

    with trio.fail_after(240):
        async with trio.open_nursery() as nursery:
            for workload, agent_class, label in (
                (FORGED, ForgingNode, "inv-net-forger"),
                (LYING, LyingNode, "inv-net-liar"),
            ):
                liar = agent_class(
                    NodeConfig(
                        routers=[router_addr],
                        links=1,
                        workloads=[f"{workload}=echo"],
                        eth_key_seed=seed_hex(label),
                    ),  # fmt: skip
                    pricing=Pricing(domain, view),
                )
                nursery.start_soon(liar.run, stop)
            staked_host, staked_sub, staked_pub, validator_key = await _subscriber(
                "inv-net-validator"
            )
            loose_host, loose_sub, loose_pub, loose_key = await _subscriber("inv-net-loose")
            async with (
                staked_host.run([]),
                loose_host.run([]),
                background_trio_service(staked_pub),
                background_trio_service(staked_sub),
                background_trio_service(loose_pub),
                background_trio_service(loose_sub),
                caller([router_addr]) as host,
                InvocationClient(host, user, domain) as client,
            ):
                staked_records = await staked_pub.subscribe(protocols.TOPIC_RECORDS)
                loose_records = await loose_pub.subscribe(protocols.TOPIC_RECORDS)
                info = info_from_p2p_addr(multiaddr.Multiaddr(router_addr))
                await staked_host.connect(info)
                await join_gossip(
                    staked_host,
                    router_id,
                    encode_binding(make_binding(validator_key, staked_host.get_id().to_string())),
                )
                await loose_host.connect(info)
                with pytest.raises((FrameError, *NET_ERRORS)):
                    await join_gossip(
                        loose_host,
                        router_id,
                        encode_binding(make_binding(loose_key, loose_host.get_id().to_string())),
                    )

                await wait_until(
                    lambda: metric(router, "emc_router_nodes") >= 3,
                    "the honest node and both liars linked",
                    in_thread=True,
                )
                first = order()
                await served_ok(client, first)

                # 1. A signer that neither holds nor uses the socket.
                stranger = network["stranger"]
                await refused(client, order(stranger), "socket-not-held", signer=stranger)
                # 2. A nonce already served.
                await refused(client, first, "nonce-reused")
                # 3. A deadline passed.
                await refused(client, order(deadline=_now(chain) - 1), "expired")
                # 4. max_price below the socket's price.
                await refused(client, order(max_price=PRICE - 1), "price-above-max")
                # 5. Escrow for two: two served and pending, the third refused.
                other = network["other"]
                for _ in range(2):
                    await served_ok(client, order(other, network["other_socket"]), other)
                await refused(
                    client, order(other, network["other_socket"]), "escrow-exhausted", other
                )
                # 6. Signed for another chain.
                wrong = InvocationDomain(domain.chain_id + 1, domain.verifying_contract)
                await refused(client, order(), "bad-signature", signing_domain=wrong)
                # 7. A receipt the node did not sign with its staked key.
                await refused(client, order(socket=FORGED), "bad-node-signature")
                # 8. Output that does not hash to the node's receipt.
                await refused(client, order(socket=LYING), "output-mismatch")
                # Delegation: the holder names a delegate, which is served; revoked, refused.
                delegate = network["delegate"]
                chain.set_user(user, sockets[ECHO], delegate.address, _now(chain) + 3_600)

                async def delegate_served() -> bool:
                    response = await send(client, order(delegate), delegate)
                    if response.ok:
                        served.append(decode_receipt(response.receipt).request_hash)
                    return response.ok

                await wait_until(delegate_served, "the delegate served")
                chain.set_user(user, sockets[ECHO], "0x" + "00" * 20, 0)

                async def delegate_refused() -> bool:
                    response = await send(client, order(delegate), delegate)
                    if response.ok:
                        served.append(decode_receipt(response.receipt).request_hash)
                        return False
                    assert response.error == "socket-not-held"
                    return True

                await wait_until(delegate_refused, "the revoked delegate refused")

                # Records: exactly one per served request reaches the staked subscriber, each a
                # valid countersigned record; the unstaked one gets none.
                got: dict[bytes, object] = {}
                with trio.fail_after(30):
                    while len(got) < len(served):
                        message = await staked_records.get()
                        for record in decode_records(message.data):
                            assert record_digest(record, domain) not in got
                            got[record_digest(record, domain)] = record
                assert sorted(r.receipt.request_hash for r in got.values()) == sorted(served)
                for record in got.values():
                    check_signatures(record, domain)
                    if record.request.user != delegate.address:  # its use has been revoked since
                        check_record(record, domain, view, _now(chain), 0)
                assert loose_records.receive_channel.statistics().current_buffer_used == 0
            stop.set()
