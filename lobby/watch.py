"""The platform watch: what the lobby measures from outside the other processes.

A stopped feed relay cannot report that the feed went quiet, nor a stopped results
worker that results wait; a process that cannot reach PostgreSQL may not be
scraped at all. So every lobby replica looks, every `watch_interval_s`, at the
shared facts themselves and serves them on its /metrics (the alerts aggregate over
replicas with max/min):

* the feed: the time of the last tick in each watched symbol's stream
  (`tradearena_feed_last_tick_timestamp_seconds`, from the entry ID, `event_ms-seq`);
* the results stream: entries not yet delivered to the workers' group, delivered but
  not acknowledged, and the age of the oldest of them
  (`tradearena_results_oldest_waiting_seconds`);
* Redis: `INFO` memory and evictions (no exporter needed);
* PostgreSQL and Redis reachability: one cheap check each, counted
  (`tradearena_dependency_checks_total`, `..._errors_total`, `tradearena_dependency_up`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio.cluster import RedisCluster

from lobby.state import DB, METRICS, REDIS, SETTINGS
from tradearena.contracts import keys
from tradearena.redisconn import AnyRedis

log = logging.getLogger(__name__)

POSTGRES_DEP = "postgres"
REDIS_DEP = "redis"


class WatchMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.last_tick = Gauge(
            "tradearena_feed_last_tick_timestamp_seconds",
            "Time of the last tick in the feed stream (Unix seconds), seen by the lobby",
            ["symbol"],
            registry=r,
        )
        self.results_lag = Gauge(
            "tradearena_results_stream_lag",
            "Results stream entries not yet delivered to the workers' group, seen by the lobby",
            registry=r,
        )
        self.results_pending = Gauge(
            "tradearena_results_stream_pending",
            "Results stream entries delivered to a worker but not acknowledged",
            registry=r,
        )
        self.results_oldest = Gauge(
            "tradearena_results_oldest_waiting_seconds",
            "Age of the oldest result not yet stored (undelivered or unacknowledged); 0 if none",
            registry=r,
        )
        self.redis_used = Gauge(
            "tradearena_redis_used_memory_bytes", "Redis INFO used_memory", registry=r
        )
        self.redis_max = Gauge(
            "tradearena_redis_maxmemory_bytes", "Redis INFO maxmemory (0: no limit)", registry=r
        )
        self.redis_evicted = Gauge(
            "tradearena_redis_evicted_keys",
            "Redis INFO evicted_keys (a counter of the server: resets when Redis restarts)",
            registry=r,
        )
        self.checks = Counter(
            "tradearena_dependency_checks",
            "Reachability checks of a dependency by the lobby",
            ["dependency"],
            registry=r,
        )
        self.errors = Counter(
            "tradearena_dependency_errors",
            "Failed reachability checks (error or timeout) of a dependency",
            ["dependency"],
            registry=r,
        )
        self.up = Gauge(
            "tradearena_dependency_up",
            "1 if the last reachability check of the dependency succeeded",
            ["dependency"],
            registry=r,
        )
        for dependency in (POSTGRES_DEP, REDIS_DEP):
            self.checks.labels(dependency)
            self.errors.labels(dependency)


def entry_ms(entry_id: str | bytes) -> int:
    """The milliseconds part of a stream entry ID (`<ms>-<seq>`)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def oldest_waiting_s(
    now_ms: int, first_pending: str | None, first_undelivered: str | None
) -> float:
    """Age of the oldest result not yet stored: the older of the first pending entry and
    the first entry after the group's last delivered one."""
    stamps = [entry_ms(e) for e in (first_pending, first_undelivered) if e is not None]
    return max(0.0, (now_ms - min(stamps)) / 1000) if stamps else 0.0


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


class PlatformWatch:
    def __init__(
        self,
        redis: AnyRedis,
        postgres_check: Callable[[], Awaitable[object]],
        symbols: tuple[str, ...],
        metrics: WatchMetrics,
        timeout_s: float = 2.0,
    ) -> None:
        self.redis = redis
        self.postgres_check = postgres_check
        self.symbols = symbols
        self.metrics = metrics
        self.timeout_s = timeout_s

    async def _checked(self, dependency: str, check: Callable[[], Awaitable[object]]) -> bool:
        self.metrics.checks.labels(dependency).inc()
        try:
            async with asyncio.timeout(self.timeout_s):
                await check()
        except Exception as exc:
            self.metrics.errors.labels(dependency).inc()
            self.metrics.up.labels(dependency).set(0)
            log.warning(
                "dependency check failed", extra={"dependency": dependency, "error": repr(exc)}
            )
            return False
        self.metrics.up.labels(dependency).set(1)
        return True

    async def check_once(self) -> None:
        await self._checked(POSTGRES_DEP, self.postgres_check)
        await self._checked(REDIS_DEP, self._redis_facts)

    async def _redis_facts(self) -> None:
        infos: list[Mapping[str, Any]]
        if isinstance(self.redis, RedisCluster):  # every primary's own figures
            per_node = await self.redis.info(target_nodes=RedisCluster.PRIMARIES)
            infos = list(per_node.values())
        else:
            infos = [await self.redis.info()]
        fullest = max(infos, key=_fill)  # memory alerts watch the fullest shard
        self.metrics.redis_used.set(float(fullest.get("used_memory", 0)))
        self.metrics.redis_max.set(float(fullest.get("maxmemory", 0)))
        self.metrics.redis_evicted.set(sum(float(i.get("evicted_keys", 0)) for i in infos))
        for symbol in self.symbols:
            last = await self.redis.xrevrange(keys.feed_stream(symbol), count=1) or []
            if last:
                self.metrics.last_tick.labels(symbol).set(entry_ms(_text(last[0][0])) / 1000)
        await self._results_facts()

    async def _results_facts(self) -> None:
        stream = keys.RESULTS_STREAM
        groups = await self.redis.xinfo_groups(stream) if await self.redis.exists(stream) else []
        group = next((g for g in groups if _text(g.get("name")) == keys.RESULTS_GROUP), None)
        if group is None:  # no worker ever started: everything in the stream waits
            lag, pending, first_pending = await self.redis.xlen(stream), 0, None
            after = "-"
        else:
            lag, pending = int(group.get("lag") or 0), int(group.get("pending") or 0)
            summary = await self.redis.xpending(stream, keys.RESULTS_GROUP)
            first_pending = _text(summary.get("min")) if pending else None
            after = "(" + _text(group.get("last-delivered-id"))
        first = await self.redis.xrange(stream, min=after, count=1)
        first_undelivered = _text(first[0][0]) if first else None
        self.metrics.results_lag.set(lag)
        self.metrics.results_pending.set(pending)
        now_ms = int(time.time() * 1000)
        self.metrics.results_oldest.set(oldest_waiting_s(now_ms, first_pending, first_undelivered))

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.check_once()
            except Exception:  # a bug here must not stop the lobby; it shows in the log
                log.exception("platform watch failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)


def _fill(info: Mapping[str, Any]) -> float:
    """A node's used share of its memory limit (its bytes used when it has none)."""
    used, limit = float(info.get("used_memory", 0)), float(info.get("maxmemory", 0))
    return used / limit if limit else used


def add_routes(app: web.Application) -> None:
    """No routes: the watch runs beside the app, its figures on the lobby's /metrics."""
    metrics = WatchMetrics(app[METRICS].registry)

    async def watch_ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        pool = app[DB]

        async def postgres_check() -> object:
            async with pool.acquire() as conn:
                return await conn.fetchval("SELECT 1")

        watch = PlatformWatch(app[REDIS], postgres_check, (settings.symbol,), metrics)
        stop = asyncio.Event()
        task = asyncio.create_task(watch.run(settings.watch_interval_s, stop))
        try:
            yield
        finally:
            stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(watch_ctx)
