"""The lobby's platform watch against a real Redis and PostgreSQL: feed age, results stream
lag/pending/oldest age (with and without the workers' group), Redis INFO, and failed
checks counted when a dependency does not answer."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from lobby.watch import PlatformWatch, WatchMetrics
from tradearena.contracts import keys


def _v(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


async def test_the_watch_reads_feed_results_and_dependencies(
    redis_url: str, empty_dsn: str
) -> None:
    redis = Redis.from_url(redis_url)
    metrics = WatchMetrics()
    reg = metrics.registry
    conn = await asyncpg.connect(empty_dsn)

    async def pg_ok() -> object:
        return await conn.fetchval("SELECT 1")

    try:
        now_ms = int(time.time() * 1000)
        await redis.xadd(keys.feed_stream("BTCUSDT"), {"p": "1"}, id=f"{now_ms - 3000}-0")
        stream = keys.RESULTS_STREAM
        await redis.xadd(stream, {"r": "1"}, id=f"{now_ms - 40_000}-0")
        watch = PlatformWatch(redis, pg_ok, ("BTCUSDT",), metrics)

        # No workers' group yet: every entry waits.
        await watch.check_once()
        assert (
            _v(reg, "tradearena_feed_last_tick_timestamp_seconds", symbol="BTCUSDT")
            == (now_ms - 3000) / 1000
        )
        assert _v(reg, "tradearena_results_stream_lag") == 1
        assert 39 < _v(reg, "tradearena_results_oldest_waiting_seconds") < 60
        assert _v(reg, "tradearena_redis_used_memory_bytes") > 0
        assert _v(reg, "tradearena_dependency_up", dependency="postgres") == 1
        assert _v(reg, "tradearena_dependency_up", dependency="redis") == 1

        # A group that took the first entry (pending) and not the second (lag).
        await redis.xgroup_create(stream, keys.RESULTS_GROUP, id="0")
        await redis.xreadgroup(keys.RESULTS_GROUP, "w1", {stream: ">"}, count=1)
        await redis.xadd(stream, {"r": "2"}, id=f"{now_ms - 5000}-0")
        await watch.check_once()
        assert _v(reg, "tradearena_results_stream_pending") == 1
        assert _v(reg, "tradearena_results_stream_lag") == 1
        assert 39 < _v(reg, "tradearena_results_oldest_waiting_seconds") < 60

        # Everything stored and acknowledged: nothing waits.
        await redis.xreadgroup(keys.RESULTS_GROUP, "w1", {stream: ">"})
        await redis.xack(stream, keys.RESULTS_GROUP, f"{now_ms - 40_000}-0", f"{now_ms - 5000}-0")
        await watch.check_once()
        assert _v(reg, "tradearena_results_stream_pending") == 0
        assert _v(reg, "tradearena_results_stream_lag") == 0
        assert _v(reg, "tradearena_results_oldest_waiting_seconds") == 0

        # A dependency that does not answer within the timeout is a failed check.
        async def pg_hangs() -> object:
            await asyncio.sleep(10)
            return None

        slow = PlatformWatch(redis, pg_hangs, ("BTCUSDT",), metrics, timeout_s=0.2)
        await slow.check_once()
        assert _v(reg, "tradearena_dependency_up", dependency="postgres") == 0
        assert _v(reg, "tradearena_dependency_errors_total", dependency="postgres") == 1
        assert _v(reg, "tradearena_dependency_checks_total", dependency="postgres") == 4
        assert _v(reg, "tradearena_dependency_errors_total", dependency="redis") == 0
    finally:
        await conn.close()
        await redis.aclose()
