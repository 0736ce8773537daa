"""What the player's screens read, on real Redis and PostgreSQL: results go through the
results worker (matches played by the engine, or built results ending now), then the
lobby serves a match's fills, ledger and final balances, the leaderboards around the
caller, and a player's rating after each match."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from lobby.results.skill import Skill
from lobby.results.worker.consumer import ResultsWorker
from lobby.results.worker.settings import ResultsWorkerSettings
from tradearena.contracts import keys
from tradearena.contracts.results import MatchResult
from tradearena.modes import default_catalogue
from tradearena.testing.lobby import Client, bearer, register
from tradearena.testing.results_factory import make_result, play_and_publish

PROBLEM = "application/problem+json"


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
        ),
    )
    await w.ensure_group()
    yield w
    await w.close()


async def players(client: Client, n: int, prefix: str) -> list[dict[str, Any]]:
    """Registered players: their token pairs (with `user`)."""
    return [await register(client, f"{prefix}{i:02d}") for i in range(n)]


async def store_all(worker: ResultsWorker, expected: int) -> None:
    stored = 0
    deadline = time.monotonic() + 30
    while stored < expected:
        assert time.monotonic() < deadline, "the worker did not store every result"
        stored += await worker.process_once(block_ms=50)


async def get(client: Client, path: str, who: dict[str, Any] | None = None) -> Any:
    resp = await client.get(path, headers=bearer(who) if who else None)
    body = await resp.json(content_type=None)
    assert resp.status == 200, body
    return body


async def test_match_detail_serves_the_stored_fills_ledger_and_final_balances(
    lobby_client: Client, worker: ResultsWorker, rds: aioredis.Redis
) -> None:
    team = await players(lobby_client, 3, "detail")
    ids = [p["user"]["id"] for p in team]
    await play_and_publish(rds, "m-detail", ids, seed=5)
    [(_, fields)] = await rds.xrange(keys.RESULTS_STREAM)
    published = MatchResult.model_validate_json(fields[b"result"])
    await store_all(worker, 1)

    detail = await get(lobby_client, "/api/v1/matches/m-detail", team[0])
    names = {p["user"]["id"]: p["user"]["username"] for p in team}
    assert detail["phase"] == "finished"
    assert len(published.fills) > 0 and len(published.ledger) > len(published.fills)
    assert [
        (f["user_id"], f["side"], Decimal(f["qty"]), Decimal(f["price"])) for f in detail["fills"]
    ] == [(f.player, f.side, f.qty, f.price) for f in sorted(published.fills, key=lambda f: f.at)]
    assert all(f["username"] == names[f["user_id"]] for f in detail["fills"])
    assert [
        (ln["seq"], ln["debit"], ln["credit"], Decimal(ln["amount"])) for ln in detail["ledger"]
    ] == [(ln.seq, ln.debit, ln.credit, ln.amount) for ln in published.ledger]
    balances = {b["account"]: Decimal(b["balance"]) for b in detail["balances"]}
    assert sum(balances.values()) == 0  # double entry: the accounts always sum to zero
    assert detail["balances"][0]["account"].startswith("house:")
    for s in published.standings:
        # positions are closed at the end: a player's money is all in cash, equal to equity
        assert balances.get(f"{s.player}:margin", Decimal(0)) == 0
        assert balances[f"{s.player}:cash"] == s.equity
    owned = [b for b in detail["balances"] if b["user_id"]]
    assert {b["username"] for b in owned} == set(names.values())
    assert [p["rank"] for p in detail["players"]] == [1, 2, 3]
    assert all(isinstance(p["rating_delta"], float) for p in detail["players"])

    resp = await lobby_client.get("/api/v1/matches/m-none", headers=bearer(team[0]))
    assert resp.status == 404 and resp.content_type == PROBLEM
    assert (await resp.json(content_type=None))["code"] == "match_not_found"


async def test_leaderboards_around_me_and_profiles_with_rating_history(
    lobby_client: Client, worker: ResultsWorker, rds: aioredis.Redis
) -> None:
    team = await players(lobby_client, 12, "board")
    outsider = await register(lobby_client, "outsider")
    ids = [p["user"]["id"] for p in team]
    now = int(time.time() * 1000)
    # three results ending now (today, this season), the same first player in each
    results = [
        make_result("m-b1", ids, seed=1, ended_at=now - 3000),
        make_result("m-b2", ids[:4], seed=2, ended_at=now - 2000),
        make_result("m-b3", [ids[0], *ids[6:9]], seed=3, ended_at=now - 1000),
    ]
    for r in results:
        await rds.xadd(keys.RESULTS_STREAM, {"result": r.model_dump_json()})
    await store_all(worker, 3)

    for period in ("all", "season", "daily"):
        full = await get(lobby_client, f"/api/v1/leaderboards/{period}?limit=100")
        ranked = [e["user_id"] for e in full["items"]]
        assert sorted(ranked) == sorted(ids), period
        for who in (team[0], team[5], team[11]):
            me = who["user"]["id"]
            rank = ranked.index(me) + 1
            page = await get(lobby_client, f"/api/v1/leaderboards/{period}?around=me&limit=4", who)
            assert page["me"]["user_id"] == me and page["me"]["rank"] == rank, (period, rank)
            assert page["offset"] == max(0, rank - 3)
            window = full["items"][page["offset"] : page["offset"] + 4]
            assert page["items"] == window
        nobody = await get(
            lobby_client, f"/api/v1/leaderboards/{period}?around=me&limit=4", outsider
        )
        assert nobody["me"] is None and nobody["offset"] == 0
        assert nobody["items"] == full["items"][:4]
    resp = await lobby_client.get("/api/v1/leaderboards/all?around=me")
    assert resp.status == 401 and resp.content_type == PROBLEM

    name = team[0]["user"]["username"]
    profile = await get(lobby_client, f"/api/v1/players/{name.upper()}", outsider)
    assert profile["username"] == name and profile["matches"] == profile["rated_matches"] == 3
    history = profile["rating_history"]
    assert [p["match_id"] for p in history] == ["m-b1", "m-b2", "m-b3"]
    assert [p["players"] for p in history] == [12, 4, 4]
    assert history[-1]["rating"] == pytest.approx(profile["rating"])
    assert history[0]["rating"] - history[0]["delta"] == pytest.approx(Skill().ordinal)
    for before, after in itertools.pairwise(history):
        assert after["rating"] - after["delta"] == pytest.approx(before["rating"])
    board = await get(lobby_client, "/api/v1/leaderboards/all?limit=100")
    [entry] = [e for e in board["items"] if e["username"] == name]
    assert entry["rating"] == pytest.approx(profile["rating"])
    newest = await get(lobby_client, f"/api/v1/players/{name}?history=1", outsider)
    assert newest["rating_history"] == history[-1:]

    fresh = await get(lobby_client, "/api/v1/players/outsider", outsider)
    assert fresh["rating"] is None and fresh["rating_history"] == [] and fresh["matches"] == 0
    resp = await lobby_client.get("/api/v1/players/nobody-here", headers=bearer(outsider))
    assert resp.status == 404 and (await resp.json(content_type=None))["code"] == "player_not_found"
