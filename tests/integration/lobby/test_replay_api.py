"""The replay API on real Redis and PostgreSQL and the real lobby app: a match played by
the engine, its result stored and archived by the results worker, then replayed from
Redis, from the archive once its Redis keys are gone, refused when its log or its
stored result was tampered with, when it is private (to others), unfinished or gone."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from lobby import match_options
from lobby.results import replay_view
from lobby.results.archive.retention import expiring_keys
from lobby.results.worker.consumer import ResultsWorker
from lobby.results.worker.settings import ResultsWorkerSettings
from lobby.state import REPLAY_CACHE
from matchserver.engine.log import dumps
from tradearena.contracts import keys
from tradearena.modes import default_catalogue
from tradearena.testing.lobby import Client, bearer, register
from tradearena.testing.results_factory import play_and_publish

ClientFactory = Callable[
    ..., contextlib.AbstractAsyncContextManager[TestClient[web.Request, web.Application]]
]


@pytest.fixture
async def worker(rds: aioredis.Redis, lobby_dsn: str) -> AsyncIterator[ResultsWorker]:
    w = ResultsWorker(
        rds,
        default_catalogue(),
        ResultsWorkerSettings(
            database_url=lobby_dsn,
            results_consumer="w1",
            results_block_ms=50,
            results_metrics_port=0,
            results_archive_grace_s=600,
        ),
    )
    await w.ensure_group()
    yield w
    await w.close()


@pytest.fixture
async def pg(lobby_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(lobby_dsn)
    yield conn
    await conn.close()


async def store(worker: ResultsWorker, expected: int) -> None:
    stored = 0
    deadline = time.monotonic() + 30
    while stored < expected:
        assert time.monotonic() < deadline, "the worker did not store every result"
        stored += await worker.process_once(block_ms=50)
    await worker.archiver.idle()


async def fetch(
    client: Client, match_id: str, who: dict[str, Any], **headers: str
) -> tuple[int, Any, Mapping[str, str]]:
    resp = await client.get(
        f"/api/v1/matches/{match_id}/replay", headers={**bearer(who), **headers}
    )
    body = await resp.json(content_type=None) if resp.status != 304 else None
    return resp.status, body, resp.headers


async def test_replay_from_redis_then_from_the_archive_and_tampering_is_refused(
    lobby_client: Client,
    lobby_client_factory: ClientFactory,
    worker: ResultsWorker,
    rds: aioredis.Redis,
    pg: asyncpg.Connection,
) -> None:
    team = [await register(lobby_client, f"replayer{i}") for i in range(3)]
    outsider = await register(lobby_client, "replaywatcher")
    ids = [p["user"]["id"] for p in team]
    record = await play_and_publish(rds, "m-replay", ids, seed=7)
    assert record.result is not None
    await store(worker, 1)
    assert await pg.fetchval("SELECT count(*) FROM match_archive") == 1
    assert await rds.exists(keys.match_log("m-replay"))  # still within the grace

    # a log in Redis that is not the one the result was computed from
    entry = record.entries[3]
    await rds.lset(keys.match_log("m-replay"), 3, dumps({**entry.to_wire(), "at": entry.at + 1}))
    status, problem, _ = await fetch(lobby_client, "m-replay", outsider)
    assert (status, problem["code"]) == (409, "replay_mismatch"), problem
    await rds.lset(keys.match_log("m-replay"), 3, dumps(entry.to_wire()))

    status, doc, headers = await fetch(lobby_client, "m-replay", outsider)
    assert status == 200, doc
    assert doc["verified"] is True and doc["kind"] == "ranked"
    assert (doc["mode"], doc["format"], doc["symbol"]) == ("standard", "blitz", "BTCUSDT")
    stored = await pg.fetch(
        "SELECT user_id::text AS id, rank, equity FROM match_players"
        " WHERE match_id = 'm-replay' ORDER BY rank"
    )
    assert [(r["player"], r["rank"]) for r in doc["result"]] == [
        (s["id"], s["rank"]) for s in stored
    ]
    final = replay_view.fold(doc["frames"], len(doc["players"]))[-1]
    shown = replay_view.board(final, [p["player"] for p in doc["players"]])
    assert [(p, str(e)) for p, e in shown] == [(s["id"], str(s["equity"])) for s in stored]
    assert {p["username"] for p in doc["players"]} == {p["user"]["username"] for p in team}
    assert headers["Content-Encoding"] == "gzip"
    assert "immutable" in headers["Cache-Control"] and headers["ETag"].startswith('"replay-')
    again, _, _ = await fetch(
        lobby_client, "m-replay", team[0], **{"If-None-Match": headers["ETag"]}
    )
    assert again == 304

    # the keys expire after the grace: another replica (its cache empty) replays the
    # same frames from the archive
    await rds.delete(*expiring_keys("m-replay"))
    async with lobby_client_factory() as other:
        answers = await asyncio.gather(*(fetch(other, "m-replay", p) for p in [outsider, *team]))
        assert [status for status, _, _ in answers] == [200] * 4, answers[0][1]
        from_archive = answers[0][1]
        assert from_archive["frames"] == doc["frames"] and from_archive["result"] == doc["result"]
        assert from_archive["candles"] == doc["candles"] and len(doc["candles"]) > 100
        assert all(body == from_archive for _, body, _ in answers)
        assert other.server.app[REPLAY_CACHE].builds == 1  # four viewers, one replay

    # a stored result that the replay does not reproduce
    await pg.execute(
        "UPDATE match_players SET equity = equity + 1 WHERE match_id = 'm-replay' AND rank = 1"
    )
    status, problem, _ = await fetch(lobby_client, "m-replay", outsider)
    assert (status, problem["code"]) == (409, "replay_mismatch"), problem
    assert any("equity" in line for line in problem["differences"]), problem

    # the log gone everywhere
    await pg.execute("DELETE FROM match_archive WHERE match_id = 'm-replay'")
    status, problem, _ = await fetch(lobby_client, "m-replay", outsider)
    assert (status, problem["code"]) == (410, "replay_unavailable"), problem


async def test_private_unfinished_and_unknown_matches(
    lobby_client: Client, worker: ResultsWorker, rds: aioredis.Redis, pg: asyncpg.Connection
) -> None:
    team = [await register(lobby_client, f"private{i}") for i in range(2)]
    outsider = await register(lobby_client, "notinvited")
    invitee = await register(lobby_client, "invitedonly")  # invited by name, did not play
    ids = [p["user"]["id"] for p in team]
    await match_options.record(
        pg, "m-private", match_options.MatchKind.PRIVATE, ids[0], [invitee["user"]["id"]]
    )
    await play_and_publish(rds, "m-private", ids, seed=8)
    await store(worker, 1)

    status, problem, _ = await fetch(lobby_client, "m-private", outsider)
    assert (status, problem["code"]) == (403, "private_match")
    for watcher in (team[1], invitee):
        status, doc, _ = await fetch(lobby_client, "m-private", watcher)
        assert status == 200 and doc["kind"] == "private" and doc["verified"] is True

    await pg.execute(
        "INSERT INTO matches (id, mode, format, phase) VALUES ('m-live', 'standard', 'blitz', 'live')"
    )
    status, problem, _ = await fetch(lobby_client, "m-live", outsider)
    assert (status, problem["code"]) == (409, "match_not_finished")
    status, problem, _ = await fetch(lobby_client, "m-nope", outsider)
    assert (status, problem["code"]) == (404, "match_not_found")
    resp = await lobby_client.get("/api/v1/matches/m-private/replay")
    assert resp.status == 401


async def test_replays_count_against_their_own_budget(
    lobby_client_factory: ClientFactory,
) -> None:
    async with lobby_client_factory(replay_limit_user=2) as client:
        me = await register(client, "impatient")
        codes = [(await fetch(client, "m-none", me))[:2] for _ in range(3)]
        assert [status for status, _ in codes] == [404, 404, 429]
        assert codes[2][1]["code"] == "rate_limited"
        other = await register(client, "patient")
        assert (await fetch(client, "m-none", other))[0] == 404  # per user
