"""The results worker against real Redis and PostgreSQL: exactly-once storage,
poison messages, dead letters, takeover of stale entries, ratings and notifications."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import asyncpg
import pytest
import redis.asyncio as aioredis

from lobby.results.worker.consumer import ResultsWorker
from lobby.results.worker.settings import ResultsWorkerSettings
from tradearena.contracts import keys
from tradearena.modes import default_catalogue
from tradearena.testing.results_factory import make_result, make_users

CAT = default_catalogue()


def settings(dsn: str, **over: object) -> ResultsWorkerSettings:
    base: dict[str, object] = {
        "database_url": dsn,
        "results_consumer": "w1",
        "results_block_ms": 50,
        "results_backoff_initial_s": 0.01,
        "results_backoff_max_s": 0.2,
        "results_max_attempts": 3,
        "results_metrics_port": 0,
    }
    return ResultsWorkerSettings(**{**base, **over})  # type: ignore[arg-type]


@pytest.fixture
async def worker(rds: aioredis.Redis, lobby_dsn: str) -> AsyncIterator[ResultsWorker]:
    w = ResultsWorker(rds, CAT, settings(lobby_dsn))
    await w.ensure_group()
    yield w
    await w.close()


async def until(
    cond: Callable[[], Awaitable[bool]], step: Callable[[], Awaitable[object]], within: float = 20
) -> None:
    deadline = time.monotonic() + within
    while not await cond():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await step()


async def publish(rds: aioredis.Redis, payload: str) -> str:
    entry = await rds.xadd(keys.RESULTS_STREAM, {"result": payload})
    return entry.decode()


async def fetchval(dsn: str, query: str, *args: object) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def test_a_result_is_stored_once_with_ratings_and_notifications(
    worker: ResultsWorker, rds: aioredis.Redis, lobby_dsn: str
) -> None:
    players = await make_users(lobby_dsn, 4)
    result = make_result("m-one", players, seed=3)
    await publish(rds, result.model_dump_json())
    await publish(rds, result.model_dump_json())  # a republished duplicate
    assert await worker.process_once(block_ms=10) == 2
    assert worker.metrics.processed._value.get() == 1
    assert worker.metrics.duplicates._value.get() == 1
    assert await fetchval(lobby_dsn, "SELECT count(*) FROM match_results") == 1
    assert (
        await fetchval(lobby_dsn, "SELECT count(*) FROM match_players WHERE match_id='m-one'") == 4
    )
    assert await fetchval(lobby_dsn, "SELECT count(*) FROM trades") == 4
    assert await fetchval(lobby_dsn, "SELECT count(*) FROM ledger_lines") == 4
    assert (
        await fetchval(lobby_dsn, "SELECT count(*) FROM notifications WHERE kind='match_result'")
        == 4
    )
    assert await fetchval(lobby_dsn, "SELECT phase FROM matches WHERE id='m-one'") == "finished"
    winner = result.standings[0].player
    loser = result.standings[-1].player
    w_ord = await fetchval(lobby_dsn, "SELECT ordinal FROM ratings WHERE user_id=$1", winner)
    l_ord = await fetchval(lobby_dsn, "SELECT ordinal FROM ratings WHERE user_id=$1", loser)
    assert isinstance(w_ord, float) and isinstance(l_ord, float) and w_ord > l_ord
    delta = await fetchval(
        lobby_dsn, "SELECT rating_delta FROM match_players WHERE user_id=$1", winner
    )
    assert isinstance(delta, float) and delta > 0
    raw = await fetchval(lobby_dsn, "SELECT payload FROM notifications WHERE user_id=$1", winner)
    assert isinstance(raw, str)
    payload = json.loads(raw)
    assert payload["rank"] == 1 and payload["match_id"] == "m-one"
    assert Decimal(payload["pnl"]) == result.standings[0].equity - Decimal(10_000)
    pending = await rds.xpending(keys.RESULTS_STREAM, keys.RESULTS_GROUP)
    assert pending["pending"] == 0
    # a third delivery later still changes nothing
    await publish(rds, result.model_dump_json())
    await worker.process_once(block_ms=10)
    assert (
        await fetchval(lobby_dsn, "SELECT matches_played FROM ratings WHERE user_id=$1", winner)
        == 1
    )
    assert await fetchval(lobby_dsn, "SELECT count(*) FROM trades") == 4


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{not json", "bad_json"),
        ('{"schema_version": 2, "match_id": "x"}', "unknown_schema_version"),
        ('{"schema_version": 1, "match_id": "x"}', "invalid_result"),
        ("[1, 2]", "bad_json"),
    ],
)
async def test_poison_messages_are_dead_lettered_at_once(
    worker: ResultsWorker, rds: aioredis.Redis, payload: str, reason: str
) -> None:
    entry = await publish(rds, payload)
    await worker.process_once(block_ms=10)
    [(_dead_id, fields)] = await rds.xrange(keys.RESULTS_DEAD_LETTER)
    assert fields[b"id"].decode() == entry
    assert fields[b"reason"].decode() == reason
    assert fields[b"result"].decode() == payload
    assert worker.metrics.dead_lettered.labels(reason)._value.get() == 1
    assert (await rds.xpending(keys.RESULTS_STREAM, keys.RESULTS_GROUP))["pending"] == 0


async def test_missing_field_unknown_mode_and_bad_player_ids_are_poison(
    worker: ResultsWorker, rds: aioredis.Redis, lobby_dsn: str
) -> None:
    players = await make_users(lobby_dsn, 2)
    await rds.xadd(keys.RESULTS_STREAM, {"other": "x"})
    bad_mode = make_result("m-mode", players).model_copy(update={"mode": "nope"})
    await publish(rds, bad_mode.model_dump_json())
    await publish(rds, make_result("m-ids", ["alice", "bob"]).model_dump_json())
    await worker.process_once(block_ms=10)
    reasons = [f[b"reason"].decode() for _, f in await rds.xrange(keys.RESULTS_DEAD_LETTER)]
    assert reasons == ["missing_result", "unknown_mode", "invalid_player"]
    assert await fetchval(lobby_dsn, "SELECT count(*) FROM matches") == 0


async def test_repeated_failures_dead_letter_after_max_attempts(
    worker: ResultsWorker, rds: aioredis.Redis, lobby_dsn: str
) -> None:
    # well-formed ids of users that do not exist: the foreign key refuses them every time
    ghosts = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"]
    await publish(rds, make_result("m-ghost", ghosts).model_dump_json())
    await worker.process_once(block_ms=10)
    [(_, fields)] = await rds.xrange(keys.RESULTS_DEAD_LETTER)
    assert fields[b"reason"] == b"store_failed"
    assert b"ForeignKeyViolation" in fields[b"error"]
    assert worker.metrics.retries.labels("error")._value.get() == 2  # 3 attempts
    assert await fetchval(lobby_dsn, "SELECT count(*) FROM matches") == 0  # rolled back


async def test_entries_left_pending_by_a_dead_consumer_are_taken_over(
    rds: aioredis.Redis, lobby_dsn: str
) -> None:
    players = await make_users(lobby_dsn, 2)
    first = ResultsWorker(rds, CAT, settings(lobby_dsn, results_consumer="dies"))
    await first.ensure_group()
    await publish(rds, make_result("m-orphan", players).model_dump_json())
    # the first consumer reads the entry and dies before storing it
    got = await rds.xreadgroup(keys.RESULTS_GROUP, "dies", {keys.RESULTS_STREAM: ">"}, count=10)
    assert len(got[0][1]) == 1
    second = ResultsWorker(
        rds, CAT, settings(lobby_dsn, results_consumer="w2", results_claim_idle_ms=20)
    )
    try:

        async def stored() -> bool:
            return await fetchval(lobby_dsn, "SELECT count(*) FROM match_results") == 1

        await until(stored, lambda: second.process_once(block_ms=20))
        assert (await rds.xpending(keys.RESULTS_STREAM, keys.RESULTS_GROUP))["pending"] == 0
        await second.update_lag()
        assert second.metrics.lag._value.get() == 0
    finally:
        await second.close()
        await first.close()


async def test_cancelled_match_stores_players_without_rating(
    worker: ResultsWorker, rds: aioredis.Redis, lobby_dsn: str
) -> None:
    players = await make_users(lobby_dsn, 3)
    await publish(rds, make_result("m-cx", players, phase="cancelled").model_dump_json())
    await worker.process_once(block_ms=10)
    assert (
        await fetchval(lobby_dsn, "SELECT count(*) FROM match_players WHERE status='cancelled'")
        == 3
    )
    assert await fetchval(lobby_dsn, "SELECT count(*) FROM ratings") == 0
    assert await fetchval(lobby_dsn, "SELECT rated FROM match_results") is False


async def test_an_entry_delivered_too_often_is_dead_lettered(
    rds: aioredis.Redis, lobby_dsn: str
) -> None:
    players = await make_users(lobby_dsn, 2)
    worker = ResultsWorker(
        rds,
        CAT,
        settings(
            lobby_dsn, results_consumer="w3", results_claim_idle_ms=20, results_max_deliveries=1
        ),
    )
    await worker.ensure_group()
    entry = await publish(rds, make_result("m-crashy", players).model_dump_json())
    # a consumer that crashes on it: delivered once, never acknowledged
    await rds.xreadgroup(keys.RESULTS_GROUP, "crashes", {keys.RESULTS_STREAM: ">"}, count=10)
    try:

        async def dead() -> bool:
            return await rds.xlen(keys.RESULTS_DEAD_LETTER) == 1

        await until(dead, lambda: worker.process_once(block_ms=20))
        [(_, fields)] = await rds.xrange(keys.RESULTS_DEAD_LETTER)
        assert fields[b"reason"] == b"too_many_deliveries" and fields[b"id"].decode() == entry
        assert await fetchval(lobby_dsn, "SELECT count(*) FROM matches") == 0
        assert (await rds.xpending(keys.RESULTS_STREAM, keys.RESULTS_GROUP))["pending"] == 0
    finally:
        await worker.close()
