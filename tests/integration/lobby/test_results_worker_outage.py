"""PostgreSQL goes away for 30 s during a burst of results: once it is back, every
result is stored exactly once, nothing is dead-lettered, nothing stays pending."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
import redis.asyncio as aioredis

from lobby.results.worker.consumer import ResultsWorker
from lobby.results.worker.settings import ResultsWorkerSettings
from tradearena.contracts import keys
from tradearena.launcher.localservices import LocalPostgres
from tradearena.modes import default_catalogue
from tradearena.testing.results_factory import T0, make_result, make_users

OUTAGE_S = 30
MATCHES = 150


async def wait_for(cond: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)  # poll interval of the condition, not a synchronisation


async def stored_count(dsn: str) -> int:
    try:
        conn = await asyncpg.connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return -1
    try:
        return int(await conn.fetchval("SELECT count(*) FROM match_results"))
    finally:
        await conn.close()


@pytest.mark.slow
async def test_results_survive_a_postgres_outage(
    redis_url: str, lobby_dsn: str, postgres_server: LocalPostgres
) -> None:
    rds = aioredis.Redis.from_url(redis_url)
    users = await make_users(lobby_dsn, 12)
    rng = random.Random(7)
    results = [
        make_result(f"m-out-{i}", rng.sample(users, rng.randint(2, 6)), seed=i, ended_at=T0 + i)
        for i in range(MATCHES)
    ]
    worker = ResultsWorker(
        rds,
        default_catalogue(),
        ResultsWorkerSettings(
            database_url=lobby_dsn,
            results_consumer="outage",
            results_block_ms=100,
            results_backoff_initial_s=0.05,
            results_backoff_max_s=1.0,
            results_max_attempts=3,
            results_metrics_port=0,
        ),
    )
    task = asyncio.create_task(worker.run())
    try:
        for r in results[:30]:
            await rds.xadd(keys.RESULTS_STREAM, {"result": r.model_dump_json()})

        async def some_stored() -> bool:
            return await stored_count(lobby_dsn) >= 10

        await wait_for(some_stored, 30, "the first results")

        await asyncio.to_thread(postgres_server.stop)
        assert not postgres_server.running
        outage_started = time.monotonic()
        # the burst goes on while PostgreSQL is away, with republished duplicates
        rest = results[30:]
        per_tick = len(rest) // 10 + 1
        for tick in range(10):
            for r in rest[tick * per_tick : (tick + 1) * per_tick]:
                await rds.xadd(keys.RESULTS_STREAM, {"result": r.model_dump_json()})
            dup = results[rng.randrange(0, 30 + tick * per_tick)]
            await rds.xadd(keys.RESULTS_STREAM, {"result": dup.model_dump_json()})
            await asyncio.sleep(OUTAGE_S / 10)  # the outage scenario lasts 30 s
        assert time.monotonic() - outage_started >= OUTAGE_S
        assert not task.done(), "the worker must ride out the outage"
        assert await rds.xlen(keys.RESULTS_DEAD_LETTER) == 0
        assert worker.metrics.retries.labels("transient")._value.get() > 0
    finally:
        if not postgres_server.running:
            await asyncio.to_thread(postgres_server.start)
    try:

        async def all_stored() -> bool:
            return await stored_count(lobby_dsn) == MATCHES

        await wait_for(all_stored, 120, "every result after the outage")

        async def drained() -> bool:
            info = await rds.xpending(keys.RESULTS_STREAM, keys.RESULTS_GROUP)
            return (
                int(info["pending"]) == 0
                and (await rds.xinfo_groups(keys.RESULTS_STREAM))[0]["lag"] == 0
            )

        await wait_for(drained, 60, "the stream to drain")
    finally:
        worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        await worker.close()
    conn = await asyncpg.connect(lobby_dsn)
    try:
        appearances = sum(len(r.players) for r in results)
        assert await conn.fetchval("SELECT count(*) FROM matches") == MATCHES
        assert await conn.fetchval("SELECT count(*) FROM match_players") == appearances
        assert await conn.fetchval("SELECT count(*) FROM trades") == appearances
        assert await conn.fetchval("SELECT count(*) FROM ledger_lines") == appearances
        assert await conn.fetchval("SELECT count(*) FROM notifications") == appearances
        assert await conn.fetchval("SELECT sum(matches_played) FROM ratings") == appearances
    finally:
        await conn.close()
    assert await rds.xlen(keys.RESULTS_DEAD_LETTER) == 0
    # Every entry (each match once, plus 10 republished) is counted once, as stored or as
    # a duplicate. A commit that landed as the connection dropped is found stored on the
    # retry and counted as a duplicate; the row counts above prove it was stored once.
    processed = worker.metrics.processed._value.get()
    duplicates = worker.metrics.duplicates._value.get()
    assert processed + duplicates == MATCHES + 10
    assert MATCHES - 5 <= processed <= MATCHES and duplicates >= 10
    await rds.aclose()
