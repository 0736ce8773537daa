"""The feed relay's lease and fenced publish on a real Redis Cluster, and a leader
that keeps publishing across the failover of its symbol's primary."""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal

from redis.asyncio.cluster import RedisCluster

from matchserver.relay.lease import FeedLease, Published
from tradearena.contracts import keys
from tradearena.contracts.feed import FeedTick
from tradearena.testing.redis_cluster import LocalRedisCluster

from .conftest import fail_over, replicate

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
HISTORY_MS = 10 * 60 * 1000


def tick(symbol: str, event_ms: int, seq: int) -> FeedTick:
    return FeedTick(symbol, Decimal("100"), event_ms, event_ms + 1, "synthetic", seq)


async def test_lease_acquire_renew_fenced_publish_release(rc: RedisCluster) -> None:
    now = int(time.time() * 1000)
    for symbol in SYMBOLS:  # three symbols, three slots
        a = FeedLease(rc, symbol, "a", 5000, HISTORY_MS)
        b = FeedLease(rc, symbol, "b", 5000, HISTORY_MS)
        assert await a.acquire() and not await b.acquire()
        assert await a.renew() and not await b.renew()
        assert await a.publish(tick(symbol, now, 1), "relay-a", now) is Published.OK
        assert await a.publish(tick(symbol, now, 1), "relay-a", now) is Published.DUPLICATE
        assert await b.publish(tick(symbol, now + 1, 2), "relay-b", now) is Published.NOT_LEADER
        assert await a.release() and not await a.release()
        assert await b.acquire() and await b.holder() == "b"
        assert await b.publish(tick(symbol, now + 1, 2), "relay-b", now) is Published.OK
        last = await a.last_tick()
        assert last is not None and last.event_ms == now + 1


async def test_the_leader_keeps_publishing_across_a_failover(
    rc: RedisCluster, redis_cluster: LocalRedisCluster
) -> None:
    symbol = "BTCUSDT"
    leader = FeedLease(rc, symbol, "a", 15_000, HISTORY_MS)
    rival = FeedLease(rc, symbol, "b", 15_000, HISTORY_MS)
    assert await leader.acquire()
    outcomes: list[Published] = []
    start = int(time.time() * 1000)
    stop = asyncio.Event()
    progress = asyncio.Condition()

    async def publish_and_renew() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            now = int(time.time() * 1000)
            outcomes.append(await leader.publish(tick(symbol, start + seq, seq), "a", now))
            assert await leader.renew()
            async with progress:
                progress.notify_all()
            await asyncio.sleep(0.01)

    publisher = asyncio.create_task(publish_and_renew())
    try:
        async with progress, asyncio.timeout(10):
            await progress.wait_for(lambda: len(outcomes) >= 20)
        replicate(redis_cluster, keys.feed_leader(symbol))  # the lease is on the replica
        await fail_over(redis_cluster, keys.feed_leader(symbol))
        after = len(outcomes)
        async with progress, asyncio.timeout(15):
            await progress.wait_for(lambda: len(outcomes) >= after + 20 or publisher.done())
        assert not publisher.done(), publisher
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(publisher, 15)
    # Still the leader on the promoted replica: every publish went through, the rival
    # is fenced out, and the stream carries the latest tick.
    assert set(outcomes) == {Published.OK}
    assert not await rival.acquire()
    assert await leader.holder() == "a"
    last = await leader.last_tick()
    assert last is not None and last.seq == len(outcomes)
