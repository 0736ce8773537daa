"""The relay's Redis side with a real Redis: lease, fenced publish, trimming, takeover, consumers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path

import pytest
from redis.asyncio import Redis

from matchserver.feed.relay_source import RelaySource
from matchserver.feed.sources import FeedTick, PriceSource, ReplaySource, SyntheticSource, wall_ms
from matchserver.relay.leadership import Leadership
from matchserver.relay.lease import Acquired, FeedLease, Offered, Published
from matchserver.relay.main import readiness
from matchserver.relay.metrics import RelayMetrics
from matchserver.relay.publisher import SourceFactory, SymbolRelay, source_factory
from matchserver.relay.settings import RelaySettings
from tradearena.contracts import keys
from tradearena.contracts.feed import decode_tick
from tradearena.launcher.localservices import LocalRedis
from tradearena.testing.fake_binance import Conn, FakeBinance, agg_trade, fake_binance, hold
from tradearena.testing.paths import KLINES_DIR

SYMBOL = "BTCUSDT"
STREAM = keys.feed_stream(SYMBOL)
HISTORY_MS = 10 * 60 * 1000
OCT_1 = KLINES_DIR / "BTCUSDT-1m-2025-10-01.csv"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def tick(event_ms: int, seq: int, price: str = "100000") -> FeedTick:
    return FeedTick(SYMBOL, D(price), event_ms, event_ms + 1, "synthetic", seq)


def lease(redis: Redis, token: str, ttl_ms: int = 2000) -> FeedLease:
    return FeedLease(redis, SYMBOL, token, ttl_ms, HISTORY_MS)


async def until(condition: Callable[[], object], within: float = 20) -> None:
    """Poll with a deadline: for state observed through Redis, which has no event to await."""
    async with asyncio.timeout(within):
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)


async def entries(redis: Redis) -> list[tuple[str, dict[str, str]]]:
    raw = await redis.xrange(STREAM)
    return [(i.decode(), {k.decode(): v.decode() for k, v in fields.items()}) for i, fields in raw]


def key_of(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


# --------------------------------------------------------------------- lease and fence
async def test_the_lease_is_exclusive_and_only_its_holder_renews_or_releases(redis: Redis) -> None:
    a, b = lease(redis, "a"), lease(redis, "b")
    assert await a.acquire()
    assert not await b.acquire()
    assert not await b.renew() and not await b.release()
    assert await a.holder() == "a"
    assert await a.acquire()  # our own lease: a renewal, not a refusal
    assert await a.renew() and 1500 < await redis.pttl(a.lease_key) <= 2000
    assert await a.release()
    assert await a.holder() is None
    assert await b.acquire() and await b.holder() == "b"


async def test_a_stopping_holder_offers_its_lease_to_a_standby_that_takes_it_over(
    redis: Redis,
) -> None:
    a, b, c = lease(redis, "a"), lease(redis, "b"), lease(redis, "c")
    assert await a.acquire() is Acquired.ACQUIRED
    assert await a.offer() is Offered.NO_STANDBY  # nobody tried yet: release instead
    assert await redis.get(a.handover_key) is None
    assert await b.acquire() is Acquired.HELD_BY_ANOTHER  # b is a standby now...
    assert await b.offer() is Offered.NOT_OURS
    assert await a.offer() is Offered.OFFERED  # ...so a offers, and keeps its lease
    assert await a.holder() == "a" and await a.renew()
    now = wall_ms()
    assert await a.publish(tick(now, 1), "relay-a", now) is Published.OK
    assert await b.acquire() is Acquired.TAKEN_OVER
    assert await b.holder() == "b" and await redis.get(a.handover_key) is None
    assert not await a.renew()  # a learns it at its next renewal or publish
    assert await a.publish(tick(now + 1, 2), "relay-a", now) is Published.NOT_LEADER
    assert await c.acquire() is Acquired.HELD_BY_ANOTHER  # taken once, by one standby
    # An offer goes with the lease: released, nothing is left for a standby to take.
    assert await b.offer() is Offered.OFFERED
    assert await b.release()
    assert await redis.get(b.handover_key) is None and await b.holder() is None
    assert await c.acquire() is Acquired.ACQUIRED
    assert await c.offer() is Offered.NO_STANDBY  # the standby mark is c's own, from before


async def test_the_lease_expires_when_not_renewed(redis: Redis) -> None:
    a, b = lease(redis, "a", ttl_ms=100), lease(redis, "b", ttl_ms=100)
    assert await a.acquire()
    await until(b.acquire)  # within about 100 ms, once a's lease lapsed
    assert await b.holder() == "b" and not await a.renew()


async def test_publishing_is_fenced_by_the_lease_and_ids_never_repeat(redis: Redis) -> None:
    a, b = lease(redis, "a"), lease(redis, "b")
    now = wall_ms()
    assert await a.acquire()
    assert await a.publish(tick(now, 1), "relay-a", now) is Published.OK
    assert await b.publish(tick(now + 1, 2), "relay-b", now) is Published.NOT_LEADER
    assert await a.publish(tick(now, 1), "relay-a", now) is Published.DUPLICATE
    assert await a.publish(tick(now - 5, 9), "relay-a", now) is Published.DUPLICATE
    assert await a.publish(tick(now, 2, "100001"), "relay-a", now) is Published.OK
    got = await entries(redis)
    assert [i for i, _ in got] == [f"{now}-1", f"{now}-2"]
    assert got[1][1]["price"] == "100001" and got[1][1]["relay"] == "relay-a"
    last = await a.last_tick()
    assert last is not None and last.key() == (now, 2) and last.price == D("100001")


async def test_history_is_trimmed_by_time_not_by_count(redis: Redis) -> None:
    a = lease(redis, "a")
    assert await a.acquire()
    now = wall_ms()
    old = now - 2 * HISTORY_MS
    for i in range(1000):  # far older than the history window
        assert await a.publish(tick(old + i, 0), "r", old + i) is Published.OK
    recent = [now - HISTORY_MS + 1000 * i for i in range(1, 50)]
    for ms in recent:
        assert await a.publish(tick(ms, 0), "r", now) is Published.OK
    kept = [key_of(i)[0] for i, _ in await entries(redis)]
    assert kept[-len(recent) :] == recent  # everything inside the window is there
    assert len(kept) < 1000  # most of what is outside went


# --------------------------------------------------------------------- relays in one loop
@dataclass
class Replica:
    relay: SymbolRelay
    stop: asyncio.Event
    task: asyncio.Task[None]
    metrics: RelayMetrics

    def gauge(self, name: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"symbol": SYMBOL})
        return 0.0 if value is None else value


def synthetic(interval_ms: int) -> Callable[[str, FeedTick | None], PriceSource]:
    def make(symbol: str, resume: FeedTick | None) -> PriceSource:
        return SyntheticSource(symbol, interval_ms=interval_ms, resume_from=resume)

    return make


def start_replica(
    redis: Redis,
    name: str,
    interval_ms: int = 20,
    ttl_ms: int = 600,
    make_source: SourceFactory | None = None,
) -> Replica:
    metrics = RelayMetrics()
    relay = SymbolRelay(
        SYMBOL,
        lease(redis, f"{name}-token", ttl_ms),
        Leadership(ttl_ms, ttl_ms // 4, 50),
        make_source or synthetic(interval_ms),
        metrics,
        name,
    )
    stop = asyncio.Event()
    return Replica(relay, stop, asyncio.create_task(relay.run(stop)), metrics)


@contextlib.asynccontextmanager
async def replicas(redis: Redis, *names: str) -> AsyncIterator[list[Replica]]:
    running = [start_replica(redis, n) for n in names]
    try:
        yield running
    finally:
        for r in running:
            r.stop.set()
        await asyncio.gather(*(r.task for r in running))


async def test_one_replica_publishes_and_a_stopped_leader_hands_over(redis: Redis) -> None:
    async with replicas(redis, "r1", "r2") as (r1, r2):
        await until(lambda: _xlen_at_least(redis, 10))
        got = await entries(redis)
        publishers = {f["relay"] for _, f in got}
        assert len(publishers) == 1
        leader, follower = (r1, r2) if publishers == {"r1"} else (r2, r1)
        assert leader.gauge("tradearena_feed_leader") == 1
        assert follower.gauge("tradearena_feed_leader") == 0
        assert follower.gauge("tradearena_feed_ticks_published_total") == 0
        leader.stop.set()  # SIGTERM path: releases the lease
        await leader.task
        assert leader.gauge("tradearena_feed_leader") == 0
        await until(lambda: _published_by(redis, follower.relay.replica))
        await until(lambda: _xlen_at_least(redis, len(got) + 10))
    final = await entries(redis)
    ids = [key_of(i) for i, _ in final]
    assert ids == sorted(set(ids))  # strictly increasing, no duplicate
    seqs = [int(f["seq"]) for _, f in final]
    assert len(seqs) == len(set(seqs))
    switch = next(i for i, (_, f) in enumerate(final) if f["relay"] == follower.relay.replica)
    assert {f["relay"] for _, f in final[switch:]} == {follower.relay.replica}
    # The new leader resumed from the last published price: no jump at the switch.
    before, after = D(final[switch - 1][1]["price"]), D(final[switch][1]["price"])
    assert abs(after - before) / before < D("0.01")


def _handovers(replica: Replica, outcome: str) -> float:
    value = replica.metrics.registry.get_sample_value(
        "tradearena_feed_handovers_total", {"symbol": SYMBOL, "outcome": outcome}
    )
    return 0.0 if value is None else value


async def test_a_stopped_leader_publishes_until_its_standby_has_taken_over(redis: Redis) -> None:
    async with replicas(redis, "r1", "r2") as (r1, r2):
        await until(lambda: _xlen_at_least(redis, 10))
        leader, follower = (r1, r2) if await _published_by(redis, "r1") else (r2, r1)
        await until(lambda: redis.exists(keys.feed_standby(SYMBOL)))
        leader.stop.set()  # SIGTERM path: offers the lease, publishes on
        await leader.task
        assert _handovers(leader, "taken") == 1
        assert _handovers(leader, "timeout") == _handovers(leader, "no_standby") == 0
        assert leader.gauge("tradearena_feed_leader") == 0
        assert (
            await redis.get(keys.feed_leader(SYMBOL)) == f"{follower.relay.replica}-token".encode()
        )
        await until(lambda: _published_by(redis, follower.relay.replica))
        # Alone now, the follower has nobody to hand over to: it releases at once.
        follower.stop.set()
        await follower.task
        assert _handovers(follower, "no_standby") == 1
        assert await redis.get(keys.feed_leader(SYMBOL)) is None
    final = await entries(redis)
    ids = [key_of(i) for i, _ in final]
    assert ids == sorted(set(ids))
    switch = next(i for i, (_, f) in enumerate(final) if f["relay"] == follower.relay.replica)
    assert {f["relay"] for _, f in final[:switch]} == {leader.relay.replica}


async def _xlen_at_least(redis: Redis, n: int) -> bool:
    return int(await redis.xlen(STREAM)) >= n


async def _published_by(redis: Redis, replica: str) -> bool:
    return any(f["relay"] == replica for _, f in await entries(redis))


async def test_a_deposed_leader_is_fenced_off_at_its_next_publish(redis: Redis) -> None:
    async with replicas(redis, "r1") as (r1,):
        await until(lambda: _xlen_at_least(redis, 3))
        # Split brain: another process takes the lease while r1 still believes it leads.
        await redis.set(keys.feed_leader(SYMBOL), "intruder", px=60_000)
        await until(lambda: r1.gauge("tradearena_feed_fenced_refused_total") >= 1)
        await until(lambda: r1.gauge("tradearena_feed_leader") == 0)
        length = int(await redis.xlen(STREAM))
        r1_ticks = r1.gauge("tradearena_feed_ticks_published_total")
        await asyncio.sleep(0.2)  # several of r1's tick intervals: it must stay quiet
        assert int(await redis.xlen(STREAM)) == length
        assert r1.gauge("tradearena_feed_ticks_published_total") == r1_ticks
        assert await redis.get(keys.feed_leader(SYMBOL)) == b"intruder"


async def test_a_new_leader_never_republishes_what_is_already_there(redis: Redis) -> None:
    # Plant ticks on the grid slots ahead of now, as a faster leader would have.
    a = lease(redis, "planted")
    assert await a.acquire()
    slot = wall_ms() // 20
    for k in range(slot, slot + 15):
        assert await a.publish(tick(k * 20, k), "planted", k * 20) is Published.OK
    await a.release()
    async with replicas(redis, "r1"):
        await until(lambda: _published_by(redis, "r1"))
        await until(lambda: _xlen_at_least(redis, 25))
    got = await entries(redis)
    ids = [key_of(i) for i, _ in got]
    assert ids == sorted(set(ids))
    first_r1 = next(key_of(i) for i, f in got if f["relay"] == "r1")
    assert first_r1 > ((slot + 14) * 20, slot + 14)  # resumed after the planted ones


# --------------------------------------------------------------------- consumers
async def take(source: RelaySource, n: int) -> list[FeedTick]:
    out: list[FeedTick] = []
    async with asyncio.timeout(20), contextlib.aclosing(source.ticks()) as ticks:
        async for t in ticks:
            out.append(t)
            if len(out) == n:
                break
    return out


async def test_relay_source_rebuilds_the_window_then_follows_live_ticks(redis: Redis) -> None:
    a = lease(redis, "a")
    assert await a.acquire()
    now = wall_ms()
    for ms in (now - 20 * 60_000, now - 4 * 60_000, now - 60_000, now - 1000):
        assert await a.publish(tick(ms, 1), "a", now) is Published.OK
    source = RelaySource(redis, SYMBOL, history_ms=5 * 60_000, block_ms=200)
    history = await take(source, 3)
    assert [t.event_ms for t in history] == [now - 4 * 60_000, now - 60_000, now - 1000]
    assert [t.recv_ms for t in history] == [now - 4 * 60_000 + 1, now - 60_000 + 1, now - 999]

    async def publish_later() -> None:
        await asyncio.sleep(0.3)  # the consumer is blocked in XREAD meanwhile
        assert await a.publish(tick(now + 5, 1, "123.45"), "a", now) is Published.OK

    task = asyncio.create_task(publish_later())
    got = await take(source, 4)  # a fresh iterator: window again, then the live one
    await task
    assert [t.event_ms for t in got] == [now - 4 * 60_000, now - 60_000, now - 1000, now + 5]
    assert got[-1].price == D("123.45")
    assert [t.recv_ms for t in got] == sorted(t.recv_ms for t in got)


async def test_ticks_fan_out_identically_to_every_match_server(redis: Redis) -> None:
    async with replicas(redis, "r1", "r2"):
        await until(lambda: _xlen_at_least(redis, 3))
        consumers = [RelaySource(redis, SYMBOL, history_ms=HISTORY_MS) for _ in range(4)]
        seen = await asyncio.gather(*(take(c, 25) for c in consumers))
    first = [(t.event_ms, t.seq, t.price) for t in seen[0]]
    assert all([(t.event_ms, t.seq, t.price) for t in s] == first for s in seen[1:])
    assert [k[:2] for k in first] == sorted({k[:2] for k in first})
    assert all(b.recv_ms >= a.recv_ms for a, b in itertools.pairwise(seen[0]))


def test_stream_entries_are_readable_by_the_consumer_format() -> None:
    t = tick(1_790_000_000_000, 3)
    raw = {b"price": b"100000", b"recv_ms": b"1790000000001", b"source": b"synthetic"}
    assert decode_tick(SYMBOL, b"1790000000000-3", raw) == t


# --------------------------------------------------------------------- whole chains
async def stop(replica: Replica) -> None:
    replica.stop.set()
    await replica.task


async def test_binance_trades_flow_through_the_relay_to_match_servers(redis: Redis) -> None:
    t0 = wall_ms()

    async def script(conn: Conn) -> None:
        for a in range(1, 6):
            await conn.ws.send_str(agg_trade(a, f"100000.{a}0", t0=t0))
        await hold(conn)

    async with fake_binance(FakeBinance([script])) as url:
        settings = RelaySettings(relay_source="binance", relay_binance_url=url)
        replica = start_replica(redis, "r1", make_source=source_factory(settings))
        try:
            got = await take(RelaySource(redis, SYMBOL, history_ms=HISTORY_MS), 5)
        finally:
            await stop(replica)
    assert [t.stream_id for t in got] == [f"{t0 + a}-{a}" for a in range(1, 6)]
    assert [t.price for t in got] == [D(f"100000.{a}0") for a in range(1, 6)]
    assert {t.source for t in got} == {"binance"}
    assert replica.gauge("tradearena_feed_ticks_published_total") == 5


async def test_a_replay_relay_hands_over_where_the_last_leader_stopped(redis: Redis) -> None:
    settings = RelaySettings(
        relay_source="replay",
        relay_replay_files=(OCT_1,),
        relay_replay_speed=D(3000),  # a price every 5 ms
    )
    first = start_replica(redis, "r1", make_source=source_factory(settings))
    await until(lambda: _xlen_at_least(redis, 20))
    await stop(first)  # releases the lease
    handed = await entries(redis)
    second = start_replica(redis, "r2", make_source=source_factory(settings))
    try:
        await until(lambda: _xlen_at_least(redis, len(handed) + 20))
    finally:
        await stop(second)
    got = await entries(redis)
    assert [f["relay"] for _, f in got[: len(handed)]] == ["r1"] * len(handed)
    assert {f["relay"] for _, f in got[len(handed) :]} == {"r2"}
    archive_times = [int(f["source_ms"]) for _, f in got]
    assert archive_times[0] == 1759276800000  # the archive's first minute
    assert all(b - a == 15_000 for a, b in itertools.pairwise(archive_times))  # nothing skipped
    ids = [key_of(i) for i, _ in got]
    assert ids == sorted(set(ids))


async def test_a_finished_replay_stays_finished(redis: Redis, tmp_path: Path) -> None:
    trades = tmp_path / "BTCUSDT-trades.csv"
    trades.write_text(
        "".join(f"{i},{100 + i},1,1,{1735689599000 + i},true,true\n" for i in range(3))
    )
    settings = RelaySettings(relay_source="replay", relay_replay_files=(trades,))
    make = source_factory(settings)
    started: list[FeedTick | None] = []

    def counting(symbol: str, resume: FeedTick | None) -> PriceSource:
        started.append(resume)
        return make(symbol, resume)

    replica = start_replica(redis, "r1", make_source=counting)
    try:
        await until(lambda: replica.relay._exhausted)
        await asyncio.sleep(0.5)  # several lease renewals: time enough to restart it
        assert replica.gauge("tradearena_feed_leader") == 1
    finally:
        await stop(replica)
    assert started == [None]  # started once, never restarted
    assert [f["price"] for _, f in await entries(redis)] == ["100", "101", "102"]
    assert replica.gauge("tradearena_feed_duplicates_refused_total") == 0


async def test_relay_and_consumer_ride_out_a_redis_restart(
    redis: Redis, redis_server: LocalRedis
) -> None:
    replica = start_replica(redis, "r1")
    consumer_redis = Redis.from_url(redis_server.url)
    source = RelaySource(
        consumer_redis, SYMBOL, HISTORY_MS, block_ms=200, retry_initial_s=0.02, retry_max_s=0.2
    )
    got: list[FeedTick] = []

    async def consume() -> None:
        async with contextlib.aclosing(source.ticks()) as ticks:
            async for t in ticks:
                got.append(t)

    task = asyncio.create_task(consume())
    try:
        await until(lambda: len(got) >= 10)
        await asyncio.to_thread(redis_server.stop)  # journal flushed on the way down
        await until(lambda: source.stats.reconnects >= 1)
        before = len(got)
        await asyncio.to_thread(redis_server.start)
        await until(lambda: len(got) >= before + 20)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stop(replica)
        await consumer_redis.aclose()
    keys_seen = [t.key() for t in got]
    assert keys_seen == sorted(set(keys_seen))  # in order, nothing twice
    assert replica.gauge("tradearena_feed_publish_errors_total") >= 1  # it did see the outage
    assert replica.gauge("tradearena_feed_leader") == 0  # released on stop


async def test_a_crash_looping_publisher_backs_off_turns_unready_and_keeps_staleness_honest(
    redis: Redis, tmp_path: Path
) -> None:
    # Three good trades, then a line that breaks the file (as when it is overwritten
    # while the relay reads it): every start after the third tick fails at line 4.
    trades = tmp_path / "BTCUSDT-trades.csv"
    trades.write_text(
        "".join(f"{i},{100 + i},1,1,{1735689599000 + i},true,true\n" for i in range(3))
        + "3,not-a-price,1,1,1735689599003,true,true\n"
    )
    starts: list[float] = []

    def make(symbol: str, resume: FeedTick | None) -> PriceSource:
        starts.append(asyncio.get_running_loop().time())
        after = resume.source_ms if resume is not None else None
        return ReplaySource(symbol, [trades], speed=60, resume_after_source_ms=after)

    replica = start_replica(redis, "r1", make_source=make)
    replica.relay.restart_initial_ms = 100
    replica.relay.restart_max_ms = 400
    check = readiness([replica.relay], "r1", 600)
    try:
        await until(lambda: _xlen_at_least(redis, 3))
        last_tick_seen = wall_ms()
        await until(lambda: len(starts) >= 6)
        ready, body = await check()
        staleness = replica.relay.status()["staleness_s"]
        now = wall_ms()
    finally:
        await stop(replica)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Exponential backoff: 0.1, 0.2, 0.4 s, then at most 0.4 s (a little slack for timers).
    for n, gap in enumerate(gaps[:5]):
        assert gap >= min(0.1 * 2**n, 0.4) * 0.9, gaps
    assert not ready, body  # five failures within a minute
    assert body["symbols"][SYMBOL]["publisher"] == "failing"
    assert replica.gauge("tradearena_feed_publisher_restarts_total") >= 5
    # Staleness is the time since the last real tick, not since the last restart.
    assert staleness >= (now - last_tick_seen) / 1000 - 0.05
    assert [f["price"] for _, f in await entries(redis)] == ["100", "101", "102"]
