"""Queueing again while assigned to a match: the real lobby app, real Redis and
PostgreSQL, match servers as real processes (tradearena.testing.proc_orchestrator)."""

from __future__ import annotations

from typing import Any

from tradearena.contracts.phases import MatchPhase
from tradearena.testing.lobby import Client, bearer, register
from tradearena.testing.proc_orchestrator import ProcessOrchestrator
from tradearena.testing.waiting import eventually


async def test_queueing_while_assigned_to_a_ready_match_is_refused(
    client: Client, orchestrator: ProcessOrchestrator
) -> None:
    carol, dave = [await register(client, name) for name in ("carol", "dave")]
    for p in (carol, dave):
        resp = await client.post(
            "/api/v1/queue", json={"mode": "duel", "format": "blitz"}, headers=bearer(p)
        )
        assert resp.status == 201

    async def ready() -> dict[str, Any] | None:
        body = await (await client.get("/api/v1/queue", headers=bearer(carol))).json()
        a = body["assignment"]
        return a if a and a["state"] == "ready" else None

    match_id = (await eventually(ready))["match_id"]
    for mode in ("duel", "standard"):
        again = await client.post("/api/v1/queue", json={"mode": mode}, headers=bearer(carol))
        problem = await again.json(content_type=None)
        assert (again.status, problem["code"]) == (409, "already_in_match"), problem
        assert problem["assignment"]["match_id"] == match_id
        assert problem["detail"]
    status = await (await client.get("/api/v1/queue", headers=bearer(carol))).json()
    assert status["tickets"] == []
    metrics = await (await client.get("/metrics")).text()
    assert 'lobby_queue_join_refusals_total{code="already_in_match"} 2.0' in metrics
    # Once the match is over, the player queues again.
    await orchestrator.cancel(match_id, "test")
    phases = [s.phase async for s in orchestrator.watch(match_id)]
    assert phases[-1] is MatchPhase.CANCELLED
    back = await client.post("/api/v1/queue", json={"mode": "standard"}, headers=bearer(carol))
    assert back.status == 201, await back.text()
