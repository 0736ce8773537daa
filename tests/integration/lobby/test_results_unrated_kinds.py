"""Private and casual results are stored but unrated: the real results worker over real
Redis and PostgreSQL, the leaderboards read through the real lobby app."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from lobby import match_options
from lobby.match_options import MatchKind
from lobby.results.worker.consumer import ResultsWorker
from lobby.results.worker.settings import ResultsWorkerSettings
from lobby.state import SIGNER
from tradearena.contracts import keys
from tradearena.modes import default_catalogue
from tradearena.testing.lobby import Client, register
from tradearena.testing.results_factory import make_result, make_users


async def _boards(client: Client) -> dict[str, set[str]]:
    out = {}
    for period in ("all", "season", "daily"):
        resp = await client.get(f"/api/v1/leaderboards/{period}?limit=100")
        body: dict[str, Any] = await resp.json()
        assert resp.status == 200, body
        out[period] = {e["user_id"] for e in body["items"]}
    return out


async def test_private_and_casual_results_change_no_rating_and_no_board(
    client: Client, rds: aioredis.Redis, lobby_dsn: str
) -> None:
    await register(client, "someone")  # the app is up (migrations, pools)
    private, casual, ranked = [
        await make_users(lobby_dsn, 2, prefix=p) for p in ("priv", "casu", "rank")
    ]
    conn = await asyncpg.connect(lobby_dsn)
    worker = ResultsWorker(
        rds,
        default_catalogue(),
        ResultsWorkerSettings(
            database_url=lobby_dsn, results_consumer="w1", results_metrics_port=0
        ),
    )
    try:
        await match_options.record(conn, "m-private", MatchKind.PRIVATE, private[0])
        await match_options.record(conn, "m-casual", MatchKind.CASUAL)
        now = int(time.time() * 1000)
        await worker.ensure_group()
        for match_id, players in (
            ("m-private", private),
            ("m-casual", casual),
            ("m-ranked", ranked),
        ):
            result = make_result(match_id, players, seed=7, ended_at=now)
            await rds.xadd(keys.RESULTS_STREAM, {"result": result.model_dump_json()})
        assert await worker.process_once(block_ms=10) == 3
        stored = await conn.fetchval("SELECT count(*) FROM match_results")
        rated = {
            str(r["user_id"])
            for r in await conn.fetch("SELECT user_id FROM ratings WHERE matches_played > 0")
        }
        deltas = {
            r["match_id"]: r["deltas"]
            for r in await conn.fetch(
                "SELECT match_id, count(rating_delta) AS deltas FROM match_players GROUP BY 1"
            )
        }
    finally:
        await worker.close()
        await conn.close()
    assert stored == 3  # all three stored, history and all
    assert rated == set(ranked)
    assert deltas == {"m-private": 0, "m-casual": 0, "m-ranked": 2}
    # History and detail say how each match was made.
    signer = client.app[SIGNER]
    for match_id, player, kind in (
        ("m-private", private[0], "private"),
        ("m-casual", casual[1], "casual"),
        ("m-ranked", ranked[0], "ranked"),
    ):
        auth = {"Authorization": f"Bearer {signer.access_token(player, 'player')}"}
        page = await (await client.get("/api/v1/matches", headers=auth)).json()
        assert [(i["match_id"], i["kind"]) for i in page["items"]] == [(match_id, kind)]
        detail = await (await client.get(f"/api/v1/matches/{match_id}", headers=auth)).json()
        assert detail["kind"] == kind
    boards = await _boards(client)
    for period, ids in boards.items():
        assert set(ranked) <= ids, period
        assert not ids & (set(private) | set(casual)), period
