"""The results flow on a real Redis Cluster: match servers publish once (MatchStore),
the worker's consumer group reads, stores in PostgreSQL, acks and dead-letters; and
the flow goes on when the primary holding the results slot is killed mid-flow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio.cluster import RedisCluster

from lobby.results.worker.consumer import ResultsWorker
from lobby.results.worker.settings import ResultsWorkerSettings
from matchserver.store import MatchStore
from tradearena.contracts import keys
from tradearena.modes import default_catalogue
from tradearena.testing.redis_cluster import LocalRedisCluster
from tradearena.testing.results_factory import make_result, make_users

from .conftest import fail_over, replicate, until

CAT = default_catalogue()


def settings(dsn: str) -> ResultsWorkerSettings:
    return ResultsWorkerSettings(
        database_url=dsn,
        results_consumer="w1",
        results_block_ms=50,
        results_backoff_initial_s=0.01,
        results_backoff_max_s=0.2,
        results_max_attempts=3,
        results_metrics_port=0,
        redis_url="redis+cluster://127.0.0.1:1",  # the client is given; validated only
    )


@pytest.fixture
async def worker(rc: RedisCluster, lobby_dsn: str) -> AsyncIterator[ResultsWorker]:
    w = ResultsWorker(rc, CAT, settings(lobby_dsn))
    await w.ensure_group()
    try:
        yield w
    finally:
        await w.close()


async def stored(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r["match_id"] for r in await conn.fetch("SELECT match_id FROM match_results")}
    finally:
        await conn.close()


async def test_results_are_stored_acked_and_poison_dead_lettered(
    worker: ResultsWorker, rc: RedisCluster, lobby_dsn: str
) -> None:
    players = await make_users(lobby_dsn, 2)
    for i in range(3):
        result = make_result(f"m-{i}", players, seed=i)
        assert await MatchStore(rc, f"m-{i}").publish_result(result.model_dump_json())
    await rc.xadd(keys.RESULTS_STREAM, {"result": "{not json"})
    assert await worker.process_once(block_ms=10) == 4
    assert await stored(lobby_dsn) == {"m-0", "m-1", "m-2"}
    # Everything acked; the poison entry moved to the dead letter in one transaction.
    pending = await rc.xpending(keys.RESULTS_STREAM, keys.RESULTS_GROUP)
    assert pending["pending"] == 0
    dead = await rc.xrange(keys.RESULTS_DEAD_LETTER)
    assert len(dead) == 1 and dead[0][1][b"reason"] == b"bad_json"


async def test_the_flow_goes_on_when_the_results_primary_is_killed(
    worker: ResultsWorker, rc: RedisCluster, lobby_dsn: str, redis_cluster: LocalRedisCluster
) -> None:
    players = await make_users(lobby_dsn, 2)

    async def publish(n: int) -> None:
        result = make_result(f"m-{n}", players, seed=n)
        await MatchStore(rc, f"m-{n}").publish_result(result.model_dump_json())

    running = asyncio.create_task(worker.run())
    try:
        for n in range(5):
            await publish(n)
        await until(lambda: _has(lobby_dsn, 5))
        replicate(redis_cluster, keys.RESULTS_STREAM)  # the results so far are on the replica
        killed, promoted = await fail_over(redis_cluster, keys.RESULTS_STREAM)
        assert promoted.address != killed.address
        for n in range(5, 10):  # the client follows the promoted replica
            await publish(n)
        await until(lambda: _has(lobby_dsn, 10), within=30)
        assert await stored(lobby_dsn) == {f"m-{n}" for n in range(10)}  # each once
        assert not running.done()
    finally:
        worker.stop()
        await asyncio.wait_for(running, 15)


async def _has(dsn: str, n: int) -> bool:
    return len(await stored(dsn)) >= n
