"""The records topic's subscriber side: a feed bound to a staked validator gets each record a
router gossips, once and in order; a feed bound to an unstaked key is refused at the join."""

import pytest
import trio

from offchain.crypto.keys import generate_keypair
from offchain.net.streams import NET_ERRORS
from offchain.protocol.frames import FrameError
from offchain.routers.agent import RouterAgent
from offchain.routers.config import RouterConfig
from offchain.routers.record_feed import record_feed
from offchain.runtime.spawn import seed_hex
from tests.offchain.routers.test_gossip import sample_record


async def test_record_feed__staked_validator_gets_each_record__unstaked_key_refused():
    validator = generate_keypair(bytes.fromhex(seed_hex("feed-validator")))
    stranger = generate_keypair(bytes.fromhex(seed_hex("feed-stranger")))
    router = RouterAgent(
        RouterConfig(eth_key_seed=seed_hex("feed-router"), staked_validators=[validator.address])
    )
    stop = trio.Event()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(router.run, stop)
            await router.ready.wait()
            addrs = [router.addrs()[0]]
            with pytest.raises((FrameError, *NET_ERRORS)):
                async with record_feed(stranger, addrs):
                    pass
            async with record_feed(validator, addrs) as feed:
                await feed.meshed(timeout_s=30)
                assert feed.in_mesh() == {router.host.get_id()}
                for i in range(5):  # records the router countersigned
                    router._record(sample_record(i))
                got = []
                async for record in feed.records():
                    got.append(record)
                    if len(got) == 5:
                        break
                assert got == [sample_record(i) for i in range(5)]
                assert feed.malformed == 0
            stop.set()
