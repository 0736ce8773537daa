"""Candles on a real Redis: written with the tick that closes them (fenced, once),
trimmed by open time, backfilled on a cold stream, continued across a handover.

The strongest check is the same throughout: the candles in Redis are exactly what
the pure aggregator makes of the ticks in the feed stream, wherever the stream
covers a whole candle: no duplicate, no hole, no partial candle at a handover.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path

import pytest
import redis as sync_redis
from redis.asyncio import Redis

from matchserver.feed.sources import FeedTick, wall_ms
from matchserver.relay.candles import CandleState, advance, aggregate
from matchserver.relay.leadership import Leadership
from matchserver.relay.lease import FeedLease, Published
from matchserver.relay.metrics import RelayMetrics
from matchserver.relay.publisher import SymbolRelay, history_factory, source_factory
from matchserver.relay.settings import RelaySettings
from tradearena.contracts import keys
from tradearena.contracts.candles import INTERVAL_MS, Candle, CandleInterval, decode_candle
from tradearena.contracts.feed import decode_tick
from tradearena.testing.paths import KLINES_DIR
from tradearena.testing.relays import relay_cluster

SYMBOL = "BTCUSDT"
S1, M1 = CandleInterval.S1, CandleInterval.M1
HISTORY_MS = 10 * 60 * 1000
OCT_1 = KLINES_DIR / "BTCUSDT-1m-2025-10-01.csv"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def tick(event_ms: int, seq: int, price: str) -> FeedTick:
    return FeedTick(SYMBOL, D(price), event_ms, event_ms, "synthetic", seq)


async def stored(redis: Redis, interval: CandleInterval) -> list[Candle]:
    raw = await redis.xrange(keys.candles(SYMBOL, interval))
    return [decode_candle(i, f) for i, f in raw]


async def stream_ticks(redis: Redis) -> list[FeedTick]:
    raw = await redis.xrange(keys.feed_stream(SYMBOL))
    return [decode_tick(SYMBOL, i, f) for i, f in raw]


def expected(ticks: list[FeedTick], interval: CandleInterval) -> list[Candle]:
    """The candles the stream's ticks make, without the first one (the stream may begin
    inside it: trimmed)."""
    _, closed = aggregate(ticks)
    return [c for i, c in closed if i is interval][1:]


def both(
    candles: list[Candle], ticks: list[FeedTick], interval: CandleInterval
) -> tuple[list[Candle], list[Candle]]:
    """The stored candles and those the stream's ticks make, where both exist."""
    made = expected(ticks, interval)
    if not made or not candles:
        return [], []
    start, end = max(made[0].t, candles[0].t), made[-1].t
    return (
        [c for c in candles if start <= c.t <= end],
        [c for c in made if start <= c.t <= end],
    )


async def until(condition: Callable[[], object], within: float = 30) -> None:
    """Poll with a deadline: state observed through Redis has no event to await."""
    async with asyncio.timeout(within):
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)


# --------------------------------------------------------------------- the fenced write
async def test_candles_are_written_with_their_closing_tick_fenced_and_once(redis: Redis) -> None:
    a = FeedLease(redis, SYMBOL, "a", 5000, HISTORY_MS)
    b = FeedLease(redis, SYMBOL, "b", 5000, HISTORY_MS)
    assert await a.acquire()
    now = wall_ms()
    base = now - now % 60_000 - 120_000
    ticks = [tick(base + 250 * k, k, f"{100 + k % 7}.{k % 10}") for k in range(500)]
    state = CandleState()
    written = {S1: 0, M1: 0}
    for t in ticks:
        after, closed = advance(state, t)
        outcome, added = await a.publish_closing(t, "a", now, closed)
        assert outcome is Published.OK
        state = after
        for interval, n in added.items():
            written[interval] += n
    _, closed = aggregate(ticks)
    assert await stored(redis, S1) == [c for i, c in closed if i is S1]
    assert await stored(redis, M1) == [c for i, c in closed if i is M1]
    assert written == {S1: 124, M1: 2}  # 125 seconds, 2 whole minutes, the last ones open

    # The fence: another token writes neither the tick nor its candles.
    late = tick(base + 250 * 600, 600, "1")
    bogus = (S1, Candle(base + 150_000, D(1), D(1), D(1), D(1), 1))
    assert await b.publish(late, "b", now, [bogus]) is Published.NOT_LEADER
    # A refused tick (older than the stream's last) writes none of its candles.
    assert await a.publish(ticks[3], "a", now, [bogus]) is Published.DUPLICATE
    assert len(await stored(redis, S1)) == 124
    # Idempotent by open time: writing them again adds nothing and changes nothing.
    outcome, _, added = await a.write_history([], "a", now, closed)
    assert outcome is Published.OK and added == {S1: 0, M1: 0}
    assert await stored(redis, S1) == [c for i, c in closed if i is S1]
    outcome, _, added = await b.write_history([], "b", now, [bogus])
    assert outcome is Published.NOT_LEADER and added == {S1: 0, M1: 0}


async def test_candles_are_trimmed_by_open_time_after_their_retention(redis: Redis) -> None:
    retention = {S1: 60_000, M1: 3_600_000}
    a = FeedLease(redis, SYMBOL, "a", 5000, HISTORY_MS, retention)
    assert await a.acquire()
    now = wall_ms()
    day_ago = now - 86_400_000
    day_ago -= day_ago % 60_000
    p = D("100")
    old = [(S1, Candle(day_ago + 1000 * k, p, p, p, p, 1)) for k in range(1000)]
    old += [(M1, Candle(day_ago + 60_000 * k, p, p, p, p, 1)) for k in range(500)]
    for start in range(0, len(old), 500):
        await a.write_history([], "a", now, old[start : start + 500])
    recent_s1 = [now - now % 1000 - 1000 * k for k in range(50, 0, -1)]
    recent_m1 = [now - now % 60_000 - 60_000 * k for k in range(50, 0, -1)]
    fresh = [(S1, Candle(t, p, p, p, p, 1)) for t in recent_s1]
    fresh += [(M1, Candle(t, p, p, p, p, 1)) for t in recent_m1]
    await a.write_history([], "a", now, fresh)
    s1 = [c.t for c in await stored(redis, S1)]
    m1 = [c.t for c in await stored(redis, M1)]
    assert s1[-50:] == recent_s1 and m1[-50:] == recent_m1  # all inside retention kept
    assert len(s1) < 1000 and len(m1) < 500  # most of what was outside went (MINID ~)


# --------------------------------------------------------------------- relays in one loop
@dataclass
class Replica:
    relay: SymbolRelay
    stop: asyncio.Event
    task: asyncio.Task[None]
    metrics: RelayMetrics

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"symbol": SYMBOL, **labels})
        return 0.0 if value is None else value


def start_replica(redis: Redis, name: str, settings: RelaySettings) -> Replica:
    metrics = RelayMetrics()
    relay = SymbolRelay(
        SYMBOL,
        FeedLease(redis, SYMBOL, f"{name}-token", 600, HISTORY_MS),
        Leadership(600, 150, 50),
        source_factory(settings),
        metrics,
        name,
        history=history_factory(settings),
        backfill_1s_ms=settings.relay_backfill_1s_ms,
    )
    stop = asyncio.Event()
    return Replica(relay, stop, asyncio.create_task(relay.run(stop)), metrics)


async def stop(replica: Replica) -> None:
    replica.stop.set()
    await replica.task


async def test_a_cold_stream_is_backfilled_and_a_new_leader_continues_it(redis: Redis) -> None:
    settings = RelaySettings(
        relay_source="synthetic",
        relay_synthetic_interval_ms=100,
        relay_backfill_ms=3_600_000,
        relay_backfill_1s_ms=300_000,
    )
    started = wall_ms()
    first = start_replica(redis, "r1", settings)
    second: Replica | None = None
    try:
        await until(lambda: _live_candles(redis, started, 3))
        m1 = await stored(redis, M1)
        s1 = await stored(redis, S1)
        assert len(m1) >= 59 and m1[0].t <= started - 59 * 60_000  # an hour of 1 m candles
        assert m1[-1].t + 60_000 <= wall_ms()  # ... all closed
        assert s1[0].t >= started - 300_000 - 1000  # 1 s candles over the last 5 minutes
        assert len(s1) >= 295
        ticks = await stream_ticks(redis)
        assert ticks[0].event_ms <= started - HISTORY_MS + 5000  # the feed has history too
        assert first.sample("tradearena_feed_candles_written_total", interval="1m") >= 59
        age = first.metrics.registry.get_sample_value(
            "tradearena_feed_last_candle_age_seconds", {"symbol": SYMBOL, "interval": "1s"}
        )
        assert age is not None and 0 <= age < 10

        # Handover: a second replica, then the first steps down (releases the lease).
        second = start_replica(redis, "r2", settings)
        await stop(first)
        handed = wall_ms()
        await until(lambda: _published_by(redis, "r2"))
        await until(lambda: _live_candles(redis, handed, 3))
    finally:
        for r in (first, second):
            if r is not None and not r.task.done():
                await stop(r)
    assert second is not None
    # The warm stream was not backfilled again: r2 only wrote what it closed live.
    assert second.sample("tradearena_feed_candles_written_total", interval="1m") <= 2
    ticks = await stream_ticks(redis)
    for interval in (S1, M1):
        got, made = both(await stored(redis, interval), ticks, interval)
        assert got == made, interval
    assert len(got) >= 8  # about the stream's ten minutes of 1 m candles
    s1 = [c.t for c in await stored(redis, S1)]
    assert s1 == sorted(set(s1))


async def test_a_replay_backfills_the_archive_start_and_plays_on_from_there(
    redis: Redis,
) -> None:
    """A day of 1 m klines at x60 is 24 minutes: the first 12 become history ending
    now, and the live replay continues with the very next archive price."""
    settings = RelaySettings(
        relay_source="replay",
        relay_replay_files=(OCT_1,),
        relay_backfill_ms=6 * 3_600_000,
    )
    started = wall_ms()
    replica = start_replica(redis, "r1", settings)
    try:
        await until(lambda: _live_candles(redis, started, 2))
    finally:
        await stop(replica)
    m1 = await stored(redis, M1)
    assert 11 <= len(m1) <= 13 and m1[0].t <= started - 11 * 60_000
    ticks = await stream_ticks(redis)
    assert ticks[0].event_ms <= started - 9 * 60_000  # the stream's window: 10 of those
    archive = [t.source_ms or 0 for t in ticks]
    steps = {b - a for a, b in itertools.pairwise(archive)}
    assert steps == {15_000}  # four prices a kline: nothing skipped or repeated at the switch
    assert any(t.event_ms >= started for t in ticks)  # and it plays on
    got, made = both(await stored(redis, S1), ticks, S1)
    assert got == made and len(got) > 500


async def _live_candles(redis: Redis, since: int, n: int) -> bool:
    return sum(c.t >= since for c in await stored(redis, S1)) >= n


async def _published_by(redis: Redis, replica: str) -> bool:
    raw = await redis.xrevrange(keys.feed_stream(SYMBOL), count=1)
    return bool(raw) and raw[0][1][b"relay"].decode() == replica


# --------------------------------------------------------------------- processes
def test_a_sigkilled_leaders_successor_continues_the_candles(
    tmp_path: Path, redis_url: str
) -> None:
    """Real `tradearena feed-relay` processes: the successor of a SIGKILLed leader
    rebuilds the open candles from the stream; every candle the stream covers is
    exactly its ticks' (a hole only where no tick was published: the handover)."""
    client = sync_redis.Redis.from_url(redis_url)

    def candles(interval: CandleInterval) -> list[Candle]:
        return [decode_candle(i, f) for i, f in client.xrange(keys.candles(SYMBOL, interval))]

    try:
        with relay_cluster(redis_url, tmp_path / "logs", ["relay-1", "relay-2"]) as cluster:
            cluster.wait_for(lambda: len(candles(S1)) >= 2, what="2 candles")
            old = cluster.leader()
            assert old is not None
            before = cluster.last_id()
            assert cluster.kill(old) == -signal.SIGKILL
            _, new, _ = cluster.first_tick_from_other_than(old, before, timeout=30)
            switch = int(cluster.last_id().split("-")[0])
            cluster.wait_for(
                lambda: sum(c.t > switch for c in candles(S1)) >= 3, what="3 candles after"
            )
            _, text = cluster.replicas[new].get("/metrics")
            written = 'tradearena_feed_candles_written_total{interval="1s",symbol="BTCUSDT"} '
            assert any(
                line.startswith(written) and float(line[len(written) :]) >= 3
                for line in text.splitlines()
            ), text
            ticks = [decode_tick(SYMBOL, i, f) for i, f in client.xrange(keys.feed_stream(SYMBOL))]
            got, made = both(candles(S1), ticks, S1)
            assert got == made
            assert any(c.t < switch for c in got) and any(c.t > switch for c in got)
            step = INTERVAL_MS[S1]
            holes = [b.t - a.t - step for a, b in itertools.pairwise(got) if b.t - a.t > step]
            assert sum(holes) <= 5000  # only around the handover (lease TTL 1.5 s)
    finally:
        client.close()
