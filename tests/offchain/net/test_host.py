import pytest
import trio
from libp2p import new_host
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID

from offchain.net.host import (
    MUXER_PROTOCOLS,
    SECURITY_PROTOCOLS,
    connection_config,
    identity_from_seed,
    listen_addrs_of,
    loopback_listen_addr,
    make_host,
    resource_manager,
)
from offchain.net.limits import node_limits, router_limits
from tests.waiting import wait_until

ECHO = TProtocol("/test/echo/1.0.0")


def test_router_limits__above_libp2p_defaults_that_break_a_router():
    limits = router_limits(2_000)
    config = connection_config(limits)
    assert config.max_connections == 2_000
    assert config.high_watermark == 2_000  # the default prunes above 200
    assert config.min_connections == 0 and config.low_watermark == 0  # no auto-dialing back
    manager = resource_manager(limits)
    assert manager.connection_limits.max_established_inbound == 2_000  # default 256
    assert manager.limits.max_connections == 2_000
    assert limits.max_peers >= 10 * 2_000  # default 1,000 evicts the host's own entry


def test_router_limits__nonsense__refused():
    with pytest.raises(ValueError):
        router_limits(0)


def test_identity__seed__deterministic_peer_id():
    seed = b"\x07" * 32
    assert (
        make_host(identity_from_seed(seed), node_limits()).get_id()
        == make_host(identity_from_seed(seed), node_limits()).get_id()
    )
    with pytest.raises(ValueError):
        identity_from_seed(b"short")


def test_host__offers_only_noise_and_yamux():
    host = make_host(identity_from_seed(), router_limits())
    upgrader = host.get_network().upgrader
    assert tuple(upgrader.security_multistream.transports) == SECURITY_PROTOCOLS
    assert SECURITY_PROTOCOLS == (NOISE_ID,)
    assert tuple(upgrader.muxer_multistream.transports) == MUXER_PROTOCOLS


async def test_host__stock_libp2p_peer__connects_over_noise_and_streams_back():
    """A peer offering everything still ends up on Noise; the listener opens a stream back."""
    router = make_host(identity_from_seed(), router_limits())
    dialer = new_host(key_pair=identity_from_seed())  # stock: noise, tls, secio, plaintext

    async def echo(stream) -> None:
        await stream.write(await stream.read(64))
        await stream.close()

    dialer.set_stream_handler(ECHO, echo)
    async with router.run([loopback_listen_addr()]), dialer.run([]):
        assert not dialer.get_addrs()  # the dialer listens nowhere
        info = info_from_p2p_addr(listen_addrs_of(router)[0])
        with trio.fail_after(10):
            await dialer.connect(info)
            # The router reaches the dialer over the dialer's own connection.
            stream = await router.new_stream(dialer.get_id(), [ECHO])
            await stream.write(b"back over your dial")
            assert await stream.read(64) == b"back over your dial"
        assert str(listen_addrs_of(router)[0]).endswith(f"/p2p/{router.get_id()}")


async def test_host__runs_no_identify_of_its_own__but_answers_a_peer_that_asks():
    router = make_host(identity_from_seed(), router_limits())
    node = make_host(identity_from_seed(), node_limits())
    stock = new_host(key_pair=identity_from_seed())  # identifies every peer it connects to

    async def echo(stream) -> None:
        await stream.write(await stream.read(64))
        await stream.close()

    node.set_stream_handler(ECHO, echo)
    stock.set_stream_handler(ECHO, echo)
    async with router.run([loopback_listen_addr()]), node.run([]), stock.run([]):
        info = info_from_p2p_addr(listen_addrs_of(router)[0])
        with trio.fail_after(10):
            await node.connect(info)
            await stock.connect(info)
            await wait_until(lambda: router.get_id() in stock._identified_peers, "stock identify")
            # A round trip on a fresh stream over each connection: an identify of the router's
            # own, started when the connection came up, would have been answered before it.
            for peer in (node, stock):
                stream = await router.new_stream(peer.get_id(), [ECHO])
                await stream.write(b"after identify")
                assert await stream.read(64) == b"after identify"
        assert not router._identified_peers
        assert not node._identified_peers
