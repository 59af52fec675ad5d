"""The chain view of stake against a real anvil with the deployed Staking contract."""

import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from eth_account import Account
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from offchain.chain.anvil import free_port
from offchain.chain.chain_client import ChainError
from offchain.chain.identity import static_role_check
from offchain.chain.stake_view import Changes, StakeView, StakingReader, connect_staking
from offchain.protocol.roles import ROLE_COMPUTE, ROLE_ROUTER
from tests.waiting import wait_until

WARNED = "stake view: chain read failed"


async def until(check, what: str, timeout_s: float = 10.0) -> None:
    await wait_until(check, what, timeout_s)


@asynccontextmanager
async def running(view: StakeView) -> AsyncIterator[StakeView]:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(view.run)
        yield view
        nursery.cancel_scope.cancel()


def reader_for(chain) -> StakingReader:
    return connect_staking(chain.anvil.url, str(chain.record), chain_id=31337)


def errors_counter() -> PromCounter:
    return PromCounter("errors", "test", ["reason"], registry=CollectorRegistry())


def counted(errors: PromCounter, reason: str) -> float:
    return errors.labels(reason=reason)._value.get()  # prometheus_client has no public getter


async def test_staked_address__unknown_at_first__staked_once_looked_up(chain):
    staked = chain.account()
    chain.stake(staked, ROLE_COMPUTE)
    bystander = Account.create().address
    view = StakeView(reader_for(chain), refresh_s=60)
    async with running(view):
        # Never waits: unknown addresses are answered unstaked and looked up in the background.
        assert view(staked.address, ROLE_COMPUTE) is False
        assert view(bystander, ROLE_COMPUTE) is False
        await until(lambda: view.known(staked.address, ROLE_COMPUTE), "the lookup")
        await until(lambda: view.known(bystander, ROLE_COMPUTE), "the other lookup")
        assert view(staked.address, ROLE_COMPUTE) is True
        assert view(bystander, ROLE_COMPUTE) is False
        # Stake is per role: the compute stake does not make it a router.
        assert await view.settle(staked.address, ROLE_ROUTER) is False
        assert await view.settle(staked.address, ROLE_COMPUTE) is True


async def test_stake__then_unstake_and_slash__seen_on_refresh_with_a_change_each(chain):
    node, router = chain.account(), chain.account()
    view = StakeView(reader_for(chain), refresh_s=0.2, follow_s=None)  # the sweep alone
    changes: list[tuple[str, int, bool]] = []
    view.subscribe(lambda address, role, staked: changes.append((address, role, staked)))
    async with running(view):
        assert await view.settle(node.address, ROLE_COMPUTE) is False
        assert await view.settle(router.address, ROLE_ROUTER) is False
        assert changes == []  # unknown counts as unstaked: reading "unstaked" is no change
        chain.stake(node, ROLE_COMPUTE)
        chain.stake(router, ROLE_ROUTER)
        await until(lambda: view(node.address, ROLE_COMPUTE), "the node's new stake")
        await until(lambda: view(router.address, ROLE_ROUTER), "the router's new stake")
        assert sorted(changes) == sorted(
            [(node.address, ROLE_COMPUTE, True), (router.address, ROLE_ROUTER, True)]
        )
        changes.clear()
        chain.unstake(node)
        minimum = chain.staking.functions.min_stake(ROLE_ROUTER).call()
        chain.slash(router.address, minimum // 2)  # what is left no longer covers the role
        await until(lambda: not view(node.address, ROLE_COMPUTE), "the unstake")
        await until(lambda: not view(router.address, ROLE_ROUTER), "the slash")
        assert sorted(changes) == sorted(
            [(node.address, ROLE_COMPUTE, False), (router.address, ROLE_ROUTER, False)]
        )


async def test_events__stake_unstake_slash_blacklist__seen_without_a_sweep(chain):
    node, router, listed = chain.account(), chain.account(), chain.account()
    view = StakeView(reader_for(chain), refresh_s=3600, follow_s=0.05)  # no sweep in this test
    changes: list[tuple[str, int, bool]] = []
    view.subscribe(lambda *change: changes.append(change))
    async with running(view):
        for account, role in ((node, ROLE_COMPUTE), (router, ROLE_ROUTER), (listed, ROLE_COMPUTE)):
            assert await view.settle(account.address, role) is False
        chain.stake(node, ROLE_COMPUTE)
        chain.stake(router, ROLE_ROUTER)
        chain.stake(listed, ROLE_COMPUTE)
        await until(lambda: view(node.address, ROLE_COMPUTE), "Staked, for the node")
        await until(lambda: view(router.address, ROLE_ROUTER), "Staked, for the router")
        await until(lambda: view(listed.address, ROLE_COMPUTE), "Staked, for the third")
        chain.unstake(node)
        minimum = chain.staking.functions.min_stake(ROLE_ROUTER).call()
        chain.slash(router.address, minimum // 2)
        chain.blacklist(listed.address)
        await until(lambda: not view(node.address, ROLE_COMPUTE), "UnstakeRequested")
        await until(lambda: not view(router.address, ROLE_ROUTER), "Slashed")
        await until(lambda: not view(listed.address, ROLE_COMPUTE), "NodeBlacklisted")
        chain.blacklist(listed.address, False)
        await until(lambda: view(listed.address, ROLE_COMPUTE), "NodeBlacklisted lifted")
        assert changes == [
            (node.address, ROLE_COMPUTE, True),
            (router.address, ROLE_ROUTER, True),
            (listed.address, ROLE_COMPUTE, True),
            (node.address, ROLE_COMPUTE, False),
            (router.address, ROLE_ROUTER, False),
            (listed.address, ROLE_COMPUTE, False),
            (listed.address, ROLE_COMPUTE, True),
        ]


async def test_events__minimum_raised_then_chain_reverted__everyone_reread(chain):
    node = chain.account()
    chain.stake(node, ROLE_COMPUTE)
    minimum = chain.staking.functions.min_stake(ROLE_COMPUTE).call()
    view = StakeView(reader_for(chain), refresh_s=3600, follow_s=0.05)
    async with running(view):
        assert await view.settle(node.address, ROLE_COMPUTE) is True
        before = chain.snapshot()
        # MinStakeChanged names no account: everyone tracked is read again.
        chain.set_min_stake(ROLE_COMPUTE, minimum + 1)
        await until(lambda: not view(node.address, ROLE_COMPUTE), "MinStakeChanged")
        # The head goes back (a reorganisation; here anvil's revert): the view reads again, and
        # the answers it read on the abandoned blocks do not outrank those of the new ones.
        chain.revert(before)
        await until(lambda: view(node.address, ROLE_COMPUTE), "the reverted minimum")
    assert chain.staking.functions.min_stake(ROLE_COMPUTE).call() == minimum


async def test_events__chain_reorganised_onto_a_longer_fork__everyone_reread(chain):
    node = chain.account()
    view = StakeView(reader_for(chain), refresh_s=3600, follow_s=0.05)
    async with running(view):
        assert await view.settle(node.address, ROLE_COMPUTE) is False
        fork_point = chain.snapshot()
        chain.stake(node, ROLE_COMPUTE)
        await until(lambda: view(node.address, ROLE_COMPUTE), "Staked")
        staked_head = chain.client.w3.eth.block_number
        # Another fork, without the stake and longer, replaces it: the head does not go back,
        # but the last block the view read is no longer on the chain.
        chain.revert(fork_point)
        chain.client.w3.provider.make_request("anvil_mine", [hex(8)])
        assert chain.client.w3.eth.block_number > staked_head
        await until(lambda: not view(node.address, ROLE_COMPUTE), "the fork without the stake")


def test_reader__changes__names_the_accounts_of_a_block_range(chain):
    reader = reader_for(chain)
    node, other = chain.account(), chain.account()
    start = reader.head()
    chain.stake(node, ROLE_COMPUTE)
    middle = reader.head()
    chain.stake(other, ROLE_COMPUTE)
    end = reader.head()
    assert reader.changes(start + 1, end).subjects == {node.address, other.address}
    assert reader.changes(middle + 1, end).subjects == {other.address}
    assert reader.is_active([(node.address, ROLE_COMPUTE)], start) == [False]
    assert reader.is_active([(node.address, ROLE_COMPUTE)], end) == [True]


async def test_older_read_answered_late__does_not_undo_a_newer_one():
    """A lookup read at block 5 answers after the follower read the same key at block 6."""
    address = Account.create().address
    source = ScriptedChain()
    view = StakeView(source, refresh_s=3600, follow_s=0.02)
    changes: list[tuple[str, int, bool]] = []
    view.subscribe(lambda *change: changes.append(change))
    async with running(view):
        await until(lambda: source.polled, "the follower's first poll")
        view(address, ROLE_COMPUTE)  # queues a lookup, which the source holds at block 5
        await until(lambda: source.held_reads, "the lookup to be out")
        source.stake_at_next_block(address)
        await until(lambda: view(address, ROLE_COMPUTE), "the follower's read at block 6")
        source.release.set()
        await until(lambda: not view._pending, "the late lookup to be answered")
        assert view(address, ROLE_COMPUTE) is True
    assert changes == [(address, ROLE_COMPUTE, True)]


async def test_change_before_the_followers_first_poll__not_missed():
    """A lookup reads block 5; the stake lands in block 6; only then does the first poll run."""
    address = Account.create().address
    source = ScriptedChain(hold_first_poll=True)
    source.release.set()  # no read is held in this test, only the first poll
    view = StakeView(source, refresh_s=3600, follow_s=0.02)
    async with running(view):
        assert await view.settle(address, ROLE_COMPUTE) is False  # read at block 5
        source.stake_at_next_block(address)
        source.first_poll.set()  # the follower starts at block 6, after the Staked log
        await until(lambda: view(address, ROLE_COMPUTE), "the stake logged before the first poll")


async def test_read_started_before_an_outage__does_not_end_it(caplog):
    """The follower's first poll is asked before the outage and answers after a lookup saw it."""
    caplog.set_level(logging.INFO, logger="offchain.chain.stake_view")
    source = ScriptedChain(hold_first_poll=True)
    source.release.set()  # only the first poll is held
    view = StakeView(source, refresh_s=3600, follow_s=0.02)
    address = Account.create().address
    async with running(view):
        await until(lambda: source.polls_asked, "the first poll to be out")
        source.down = True
        view(address, ROLE_COMPUTE)
        await until(lambda: view.down_since is not None, "a lookup to see the outage")
        source.first_poll.set()  # answers, though asked before the outage
        await until(lambda: source.polls_asked >= 3, "the polls after it, which fail")
        assert view.down_since is not None
        source.down = False
        await until(lambda: view.known(address, ROLE_COMPUTE), "the lookup, once back")
        assert view.down_since is None
    messages = [r.getMessage() for r in caplog.records]
    assert sum(WARNED in m for m in messages) == 1
    assert sum("chain answers again" in m for m in messages) == 1


class ScriptedChain:
    """A chain in memory: its first read at block 5 waits until released, its first poll
    (with ``hold_first_poll``) until ``first_poll`` is set, and every read fails while down."""

    def __init__(self, hold_first_poll: bool = False) -> None:
        self.number = 5
        self.staked_from: dict[str, int] = {}
        self.release = threading.Event()
        self.first_poll = threading.Event()
        if not hold_first_poll:
            self.first_poll.set()
        self.held_reads = 0
        self.polled = False
        self.polls_asked = 0
        self.down = False

    def head(self) -> int:
        if self.down:
            raise ChainError("down")
        return self.number

    def block(self, number=None):
        down = self.down  # as it was when the poll was asked
        self.polls_asked += 1
        self.first_poll.wait(timeout=10)
        if down:
            raise ChainError("down")
        self.polled = True
        number = self.number if number is None else number
        return number, f"hash-{number}"

    def is_active(self, keys, block=None):
        if block == 5 and not self.release.is_set():
            self.held_reads += 1
            self.release.wait(timeout=10)
        return [self.staked_from.get(address, 1 << 62) <= block for address, _role in keys]

    def changes(self, first, last):
        named = {a for a, at in self.staked_from.items() if first <= at <= last}
        return Changes(frozenset(named))

    def stake_at_next_block(self, address: str) -> None:
        self.number += 1
        self.staked_from[address] = self.number


async def test_chain_down__last_view_kept_and_logged_once__recovers_when_back(chain, caplog):
    caplog.set_level(logging.INFO, logger="offchain.chain.stake_view")
    node = chain.account()
    chain.stake(node, ROLE_COMPUTE)
    reader = reader_for(chain)
    errors = errors_counter()
    view = StakeView(reader, refresh_s=0.1, errors=errors)
    changes: list[tuple[str, int, bool]] = []
    async with running(view):
        assert await view.settle(node.address, ROLE_COMPUTE) is True
        view.subscribe(lambda *change: changes.append(change))
        # The chain goes away: a dead port where the endpoint was.
        reader.url = f"http://127.0.0.1:{free_port()}"
        stranger = Account.create().address
        view(stranger, ROLE_COMPUTE)  # a lookup that cannot be answered yet
        await until(
            lambda: counted(errors, "stake-chain-error") >= 5,
            "several failed reads",
        )
        assert view.down_since is not None
        assert view(node.address, ROLE_COMPUTE) is True  # the last view stands
        assert not view.known(stranger, ROLE_COMPUTE)
        chain.unstake(node)  # meanwhile, on the chain the view cannot reach
        assert sum(WARNED in r.getMessage() for r in caplog.records) == 1  # once per outage
        reader.url = chain.anvil.url
        await until(lambda: not view(node.address, ROLE_COMPUTE), "the unstake, once back")
        await until(lambda: view.known(stranger, ROLE_COMPUTE), "the queued lookup, once back")
        assert view.down_since is None
        assert any("chain answers again" in r.getMessage() for r in caplog.records)
        assert changes == [(node.address, ROLE_COMPUTE, False)]


def test_connect__wrong_chain_id__refused_with_both_ids(chain):
    with pytest.raises(ChainError, match="is chain 31337, but chain 1 is configured"):
        connect_staking(chain.anvil.url, str(chain.record), chain_id=1)


def test_connect__record_for_another_chain__refused(chain, tmp_path):
    record = json.loads(chain.record.read_text())
    (tmp_path / "other.json").write_text(json.dumps(dict(record, chain_id=5)))
    with pytest.raises(ChainError, match="is for chain 5"):
        connect_staking(chain.anvil.url, str(tmp_path / "other.json"))


def test_connect__no_answer__refused_at_start():
    with pytest.raises(ChainError, match="cannot read stake: no answer"):
        connect_staking(f"http://127.0.0.1:{free_port()}", chain_id=31337)


def test_reader__address_without_staking_code__read_fails(chain):
    reader = reader_for(chain)
    reader.staking = Account.create().address  # no code there: not a Staking contract
    with pytest.raises(ChainError, match="is_active answered"):
        reader.is_active([(Account.create().address, ROLE_COMPUTE)])


async def test_tracked_addresses__capped__least_recent_evicted_held_kept(chain):
    held = chain.account()
    chain.stake(held, ROLE_COMPUTE)
    errors = errors_counter()
    view = StakeView(reader_for(chain), refresh_s=60, max_tracked=4, errors=errors)
    async with running(view):
        view.hold(held.address, ROLE_COMPUTE)  # a linked node: tracked while held
        await until(lambda: view.known(held.address, ROLE_COMPUTE), "the held lookup")
        flood = [Account.create().address for _ in range(12)]
        for address in flood:
            await view.settle(address, ROLE_COMPUTE)
            assert len(view) <= 4
        # The held address survived the flood; of the rest, the most recent three remain.
        assert view(held.address, ROLE_COMPUTE) is True
        assert [a for a in flood if view.known(a, ROLE_COMPUTE)] == flood[-3:]
        # Released, it is evicted in its turn like any other.
        view.release(held.address, ROLE_COMPUTE)
        for address in flood[:4]:
            await view.settle(address, ROLE_COMPUTE)
        assert not view.known(held.address, ROLE_COMPUTE) and len(view) == 4


async def test_lookups__queue_bounded__a_flood_of_misses_dropped_and_counted(chain):
    errors = errors_counter()
    # Half a lookup a second: the queue fills long before it drains.
    view = StakeView(
        reader_for(chain), refresh_s=60, max_pending=8, lookups_per_s=0.5, errors=errors
    )
    node = chain.account()
    chain.stake(node, ROLE_COMPUTE)
    async with running(view):
        for _ in range(100):
            view(Account.create().address, ROLE_COMPUTE)
        assert view.dropped == 100 - 8
        assert counted(errors, "stake-lookup-dropped") == view.dropped
        # A peer on a new connection still gets its answer: it goes to the front.
        with trio.fail_after(10):
            assert await view.settle(node.address, ROLE_COMPUTE) is True


async def test_static_allow_list__staked_whatever_the_chain_says(chain):
    listed = Account.create().address  # never staked on-chain
    static = static_role_check({ROLE_COMPUTE: [listed]})
    view = StakeView(reader_for(chain), static, refresh_s=0.1)
    changes: list[tuple[str, int, bool]] = []
    view.subscribe(lambda *change: changes.append(change))
    async with running(view):
        assert view(listed, ROLE_COMPUTE) is True
        assert await view.settle(listed, ROLE_ROUTER) is False
        view.hold(listed, ROLE_COMPUTE)
        await until(lambda: view.known(listed, ROLE_COMPUTE), "the chain's answer")
        assert view(listed, ROLE_COMPUTE) is True and changes == []


async def test_lookups__flood_after_a_known_node_connects__node_still_read_and_staked(chain):
    node = chain.account()
    chain.stake(node, ROLE_COMPUTE)
    view = StakeView(reader_for(chain), refresh_s=3600, follow_s=None, max_tracked=4, max_pending=8)
    async with running(view):
        assert await view.settle(node.address, ROLE_COMPUTE) is True
        for _ in range(4):  # the node falls out of the tracked set, but stays known stake
            await view.settle(Account.create().address, ROLE_COMPUTE)
        assert not view.known(node.address, ROLE_COMPUTE)
        assert view.known_stake(node.address, ROLE_COMPUTE)
        view.hold(node.address, ROLE_COMPUTE)  # it reconnects ...
        flood = [Account.create().address for _ in range(200)]
        for address in flood:  # ... and a flood of fresh bindings connects after it
            view.hold(address, ROLE_COMPUTE)
        assert len(view._pending) == 8 and view.dropped >= 200 - 8
        assert node.address in {a for a, _ in view._pending}
        await until(lambda: view.known(node.address, ROLE_COMPUTE), "the node's lookup")
        assert view(node.address, ROLE_COMPUTE) is True


async def test_lookups__held_never_seen_node_displaced_by_a_flood__parked_and_read_later(chain):
    node = chain.account()
    chain.stake(node, ROLE_COMPUTE)  # staked before the view starts: never seen by it
    view = StakeView(reader_for(chain), refresh_s=3600, follow_s=None, max_pending=8)
    async with running(view):
        view.hold(node.address, ROLE_COMPUTE)
        flood = [Account.create().address for _ in range(40)]
        for address in flood:
            view.hold(address, ROLE_COMPUTE)
        assert not view.known_stake(node.address, ROLE_COMPUTE)
        assert node.address not in {a for a, _ in view._pending}  # displaced: parked
        assert len(view._pending) == 8 and len(view._parked) == 41 - 8
        await until(lambda: view.known(node.address, ROLE_COMPUTE), "the parked node's lookup")
        assert view(node.address, ROLE_COMPUTE) is True
        await until(lambda: all(view.known(a, ROLE_COMPUTE) for a in flood), "every held key")
        assert not view._parked


async def test_lookups__address_named_by_a_staking_event__served_ahead_of_a_flood():
    node = Account.create().address
    source = ScriptedChain()
    source.release.set()  # no read is held in this test
    view = StakeView(source, refresh_s=3600, follow_s=0.02, max_pending=8, lookups_per_s=0.5)
    async with running(view):
        await until(lambda: source.polled, "the follower's first poll")
        source.stake_at_next_block(node)
        await until(lambda: view.known_stake(node, ROLE_COMPUTE), "the Staked log")
        assert not view.known(node, ROLE_COMPUTE)  # named, but not tracked: not read yet
        for _ in range(100):  # never-seen addresses, mentioned once each
            view(Account.create().address, ROLE_COMPUTE)
        assert view(node, ROLE_COMPUTE) is False  # asked while the queue is full ...
        assert next(iter(view._pending)) == (node, ROLE_COMPUTE)  # ... yet served first
        await until(lambda: view(node, ROLE_COMPUTE), "the node's lookup")


async def test_parked_key__released__no_longer_kept_nor_read():
    source = ScriptedChain()  # its first read waits until released: the queue stays as it is
    view = StakeView(source, refresh_s=3600, follow_s=None, max_pending=1)
    held = [Account.create().address for _ in range(3)]
    async with running(view):
        for address in held:
            view.hold(address, ROLE_COMPUTE)
        assert list(view._parked) == [(held[0], ROLE_COMPUTE), (held[1], ROLE_COMPUTE)]
        view.release(held[0], ROLE_COMPUTE)
        assert list(view._parked) == [(held[1], ROLE_COMPUTE)]
        source.release.set()
        await until(lambda: view.known(held[1], ROLE_COMPUTE), "the parked, still held key")
        assert view.known(held[2], ROLE_COMPUTE) and not view.known(held[0], ROLE_COMPUTE)
        assert not view._parked
