"""The queue, formation, leaderboard and admin-match endpoints in the real lobby app:
REST on a real port, real Redis and PostgreSQL, match servers as real processes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis
import socketio

from lobby.results.worker.consumer import ResultsWorker
from lobby.results.worker.settings import ResultsWorkerSettings
from lobby.state import SIGNER
from tradearena.contracts import keys
from tradearena.contracts.phases import MatchPhase
from tradearena.modes import default_catalogue
from tradearena.testing.lobby import Client, admin_tokens, bearer, register
from tradearena.testing.proc_orchestrator import ProcessOrchestrator
from tradearena.testing.results_factory import make_result
from tradearena.testing.waiting import eventually


async def test_join_twice_status_and_leave(client: Client) -> None:
    alice = await register(client, "alice")
    auth = bearer(alice)
    resp = await client.post(
        "/api/v1/queue", json={"mode": "duel", "format": "blitz"}, headers=auth
    )
    assert resp.status == 201
    ticket = await resp.json()
    assert ticket["mode"] == "duel" and ticket["rating"] == 25.0 and not ticket["priority"]
    again = await client.post(
        "/api/v1/queue", json={"mode": "duel", "format": "quick"}, headers=auth
    )
    problem = await again.json(content_type=None)
    assert again.status == 409 and problem["code"] == "already_queued"
    assert problem["ticket"]["ticket_id"] == ticket["ticket_id"]
    bad = await client.post("/api/v1/queue", json={"mode": "nope"}, headers=auth)
    assert bad.status == 422 and (await bad.json(content_type=None))["code"] == "unknown_mode"
    status = await (await client.get("/api/v1/queue", headers=auth)).json()
    assert [t["ticket_id"] for t in status["tickets"]] == [ticket["ticket_id"]]
    assert status["assignment"] is None
    gone = await client.delete("/api/v1/queue?mode=duel", headers=auth)
    assert (await gone.json()) == {"removed": 1}
    assert (await (await client.get("/api/v1/queue", headers=auth)).json())["tickets"] == []
    assert (await client.get("/api/v1/queue")).status == 401


async def test_two_players_are_matched_and_told_where_to_play_then_admin_cancels(
    client: Client, orchestrator: ProcessOrchestrator, lobby_dsn: str
) -> None:
    players = [await register(client, name) for name in ("carol", "dave")]
    for p in players:
        resp = await client.post(
            "/api/v1/queue", json={"mode": "duel", "format": "blitz"}, headers=bearer(p)
        )
        assert resp.status == 201

    async def ready() -> dict[str, Any] | None:
        body = await (await client.get("/api/v1/queue", headers=bearer(players[0]))).json()
        a = body["assignment"]
        return a if a and a["state"] == "ready" else None

    assignment = await eventually(ready)
    match_id = assignment["match_id"]
    notes = await (await client.get("/api/v1/notifications", headers=bearer(players[1]))).json()
    kinds = {n["kind"]: n["payload"] for n in notes["items"]}
    assert kinds["match_found"]["match_id"] == match_id
    assert kinds["match_ready"]["port"] == assignment["port"]
    app = client.server.app
    assert app is not None
    token = kinds["match_ready"]["token"]
    assert app[SIGNER].verifier().verify_match(token, match_id, players[1]["user"]["id"])

    metrics = await (await client.get("/metrics")).text()
    assert 'lobby_matchmaking_formations_total{outcome="ready"} 1.0' in metrics
    assert 'lobby_matchmaking_claims_total{mode="duel"} 1.0' in metrics
    assert 'lobby_matchmaking_wait_seconds_count{mode="duel"} 2.0' in metrics

    admin = await admin_tokens(client, lobby_dsn)
    forbidden = await client.get("/api/v1/admin/matches", headers=bearer(players[0]))
    assert forbidden.status == 403
    live = await (await client.get("/api/v1/admin/matches", headers=bearer(admin))).json()
    assert [m["match_id"] for m in live["items"]] == [match_id]
    assert live["items"][0]["phase"] == "Ready"
    missing = await client.post(
        "/api/v1/admin/matches/m-nope/cancel", json={"reason": "x"}, headers=bearer(admin)
    )
    assert missing.status == 404
    cancel = await client.post(
        f"/api/v1/admin/matches/{match_id}/cancel", json={"reason": "test"}, headers=bearer(admin)
    )
    assert cancel.status == 202
    assert (await cancel.json())["phase"] in ("Cancelling", "Cancelled")
    phases = [s.phase async for s in orchestrator.watch(match_id)]
    assert phases[-1] is MatchPhase.CANCELLED
    audit = await (
        await client.get(f"/api/v1/admin/audit?target_id={match_id}", headers=bearer(admin))
    ).json()
    [entry] = audit["items"]
    assert entry["action"] == "match.cancel" and entry["payload"]["reason"] == "test"
    again = await client.post(
        f"/api/v1/admin/matches/{match_id}/cancel", json={"reason": "again"}, headers=bearer(admin)
    )
    assert again.status == 409
    live = await (await client.get("/api/v1/admin/matches", headers=bearer(admin))).json()
    assert live["items"] == []


async def test_closing_the_last_socket_leaves_the_queues(client: Client) -> None:
    erin = await register(client, "erin")
    sio = socketio.AsyncClient(reconnection=False)
    pushed: asyncio.Queue[Any] = asyncio.Queue()

    async def on_status(data: Any) -> None:
        await pushed.put(data)

    sio.on("queue_status", on_status, namespace="/lobby")
    await sio.connect(
        str(client.make_url("/")),
        namespaces=["/lobby"],
        auth={"token": erin["access_token"]},
        transports=["websocket"],
    )
    await client.post("/api/v1/queue", json={"mode": "standard"}, headers=bearer(erin))
    live = await asyncio.wait_for(pushed.get(), 10)
    assert [t["mode"] for t in live["tickets"]] == ["standard"]
    status = await sio.call("queue_status", {}, namespace="/lobby")
    assert [t["mode"] for t in status["tickets"]] == ["standard"]
    await sio.disconnect()

    async def left() -> bool:
        body = await (await client.get("/api/v1/queue", headers=bearer(erin))).json()
        return body["tickets"] == []

    assert await eventually(left)


async def test_leaderboards_all_time_season_and_daily(
    client: Client, lobby_dsn: str, redis_url: str
) -> None:
    users = [await register(client, f"trader{i}") for i in range(4)]
    ids = [u["user"]["id"] for u in users]
    rds = aioredis.Redis.from_url(redis_url)
    now = int(time.time() * 1000)
    for i in range(3):
        result = make_result(f"m-lb-{i}", ids, seed=i, ended_at=now - i * 1000)
        await rds.xadd(keys.RESULTS_STREAM, {"result": result.model_dump_json()})
    worker = ResultsWorker(
        rds,
        default_catalogue(),
        ResultsWorkerSettings(database_url=lobby_dsn, results_metrics_port=0),
    )
    await worker.ensure_group()
    assert await worker.process_once(block_ms=10) == 3
    await worker.close()
    await rds.aclose()

    for period in ("all", "season", "daily"):
        first = await (await client.get(f"/api/v1/leaderboards/{period}?limit=3")).json()
        assert [e["rank"] for e in first["items"]] == [1, 2, 3]
        assert first["next_offset"] == 3
        rest = await (await client.get(f"/api/v1/leaderboards/{period}?limit=3&offset=3")).json()
        assert [e["rank"] for e in rest["items"]] == [4] and rest["next_offset"] is None
        everyone = {e["user_id"] for e in first["items"] + rest["items"]}
        assert everyone == set(ids)
        assert all(e["matches"] == 3 for e in first["items"])
    daily = await (await client.get("/api/v1/leaderboards/daily?limit=10")).json()
    pnls = [float(e["pnl"]) for e in daily["items"]]
    assert pnls == sorted(pnls, reverse=True)
    assert sum(e["wins"] for e in daily["items"]) == 3
    alltime = await (await client.get("/api/v1/leaderboards/all")).json()
    ratings = [e["rating"] for e in alltime["items"]]
    assert ratings == sorted(ratings, reverse=True)
    bad = await client.get("/api/v1/leaderboards/weekly")
    assert bad.status in (400, 422)
