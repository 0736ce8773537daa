"""Private matches by invite code: the real lobby app over real Redis and PostgreSQL, match
servers as real processes (tradearena.testing.proc_orchestrator)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from lobby.app import create_app
from lobby.matchmaking import private_rules as rules
from lobby.matchmaking.private import PrivateMatches
from lobby.matchmaking.queues import Queues
from lobby.settings import LobbySettings
from tradearena.contracts.phases import MatchPhase
from tradearena.modes import Catalogue, load_catalogue
from tradearena.testing.lobby import Client, bearer, register
from tradearena.testing.proc_orchestrator import ProcessOrchestrator
from tradearena.testing.waiting import eventually

BASE = "/api/v1/private-matches"
Factory = Callable[..., Any]


def quick_catalogue(countdown_ms: int) -> Catalogue:
    """The packaged catalogue with the duel's countdown shortened."""
    cat = load_catalogue(None)
    duel = cat.modes["duel"].model_copy(update={"countdown_ms": countdown_ms})
    return cat.model_copy(update={"modes": {**cat.modes, "duel": duel}})


@pytest.fixture
async def apps(
    lobby_settings: LobbySettings, orchestrator: ProcessOrchestrator
) -> AsyncIterator[Factory]:
    """Start lobby apps (replicas sharing Redis, PostgreSQL and the orchestrator)."""
    async with AsyncExitStack() as stack:

        async def make(catalogue: Catalogue | None = None, **overrides: Any) -> Client:
            settings = lobby_settings.model_copy(update=overrides)
            app = create_app(settings, orchestrator=orchestrator, catalogue=catalogue)
            return await stack.enter_async_context(TestClient(TestServer(app)))

        yield make


async def _json(resp: Any) -> dict[str, Any]:
    body: dict[str, Any] = await resp.json(content_type=None)
    return body


async def create(client: Client, host: dict[str, Any], **body: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post(
        BASE, json={"mode": "duel", "format": "blitz", **body}, headers=bearer(host)
    )
    return resp.status, await _json(resp)


async def act(
    client: Client, who: dict[str, Any], code: str, what: str
) -> tuple[int, dict[str, Any]]:
    resp = await client.post(f"{BASE}/{code}/{what}", headers=bearer(who))
    return resp.status, await _json(resp)


async def room(client: Client, who: dict[str, Any], code: str) -> dict[str, Any]:
    resp = await client.get(f"{BASE}/{code}", headers=bearer(who))
    assert resp.status == 200
    return await _json(resp)


async def assignment(client: Client, who: dict[str, Any]) -> dict[str, Any] | None:
    body = await _json(await client.get("/api/v1/queue", headers=bearer(who)))
    a: dict[str, Any] | None = body["assignment"]
    return a


async def test_host_invites_the_invitee_joins_and_the_host_starts(
    apps: Factory, lobby_dsn: str, orchestrator: ProcessOrchestrator
) -> None:
    client = await apps()
    host, bob, carol = [await register(client, n) for n in ("hosta", "bobby", "carol")]
    status, created = await create(client, host, size=2, invite=["Bobby"])
    assert status == 201, created
    code = created["code"]
    assert len(code) == 8 and created["link"] == f"#/private/{code}"
    assert created["state"] == "open" and [m["username"] for m in created["joined"]] == ["hosta"]
    assert created["expires_at"] > created["start_at"] > created["created_at"]
    notes = await _json(await client.get("/api/v1/notifications", headers=bearer(bob)))
    invite = next(n for n in notes["items"] if n["kind"] == "private_invite")
    assert invite["payload"]["code"] == code and invite["payload"]["link"] == f"#/private/{code}"

    assert (await act(client, host, code, "start"))[1]["code"] == "not_enough_players"
    status, joined = await act(client, bob, code, "join")
    assert status == 200 and [m["username"] for m in joined["joined"]] == ["hosta", "bobby"]
    assert (await act(client, bob, code.lower(), "join"))[0] == 200  # again: unchanged
    status, full = await act(client, carol, code, "join")
    assert (status, full["code"]) == (409, "private_full")
    status, not_host = await act(client, bob, code, "start")
    assert (status, not_host["code"]) == (403, "not_host")

    status, started = await act(client, host, code, "start")
    assert status == 202 and started["state"] in ("starting", "started"), started
    match_id = started["match_id"]
    conn = await asyncpg.connect(lobby_dsn)
    try:
        row = await conn.fetchrow(
            "SELECT kind, rated, host_id::text AS host FROM match_options WHERE match_id = $1",
            match_id,
        )
    finally:
        await conn.close()
    assert (row["kind"], row["rated"], row["host"]) == ("private", False, host["user"]["id"])

    async def ready(who: dict[str, Any]) -> dict[str, Any] | None:
        a = await assignment(client, who)
        return a if a and a["state"] == "ready" else None

    for who in (host, bob):
        assert (await eventually(functools.partial(ready, who)))["match_id"] == match_id
    assert (await eventually(lambda: _started(client, host, code)))["state"] == "started"
    notes = await _json(await client.get("/api/v1/notifications", headers=bearer(bob)))
    kinds = [n["kind"] for n in notes["items"]]
    assert "match_ready" in kinds and "match_found" in kinds
    ready_note = next(n for n in notes["items"] if n["kind"] == "match_ready")
    assert ready_note["payload"]["match_id"] == match_id and ready_note["payload"]["token"]
    # Started: no more joins, no second start.
    assert (await act(client, carol, code, "join"))[1]["code"] == "private_started"
    assert (await act(client, host, code, "start"))[1]["code"] == "private_started"
    metrics = await (await client.get("/metrics")).text()
    assert 'lobby_private_matches_total{event="ready"} 1.0' in metrics
    # Seated while it runs; once it is over, the host opens another room.
    assert (await create(client, host))[1]["code"] == "already_in_match"
    await orchestrator.cancel(match_id, "test")
    assert [s.phase async for s in orchestrator.watch(match_id)][-1] is MatchPhase.CANCELLED
    assert (await create(client, host))[0] == 201
    assert 'lobby_private_refusals_total{code="private_full"} 1.0' in metrics


async def _note(client: Client, who: dict[str, Any], kind: str) -> dict[str, Any] | None:
    notes = await _json(await client.get("/api/v1/notifications", headers=bearer(who)))
    return next((n for n in notes["items"] if n["kind"] == kind), None)


async def _started(client: Client, who: dict[str, Any], code: str) -> dict[str, Any] | None:
    r = await room(client, who, code)
    return r if r["state"] == "started" else None


async def test_a_room_holds_the_queue_assignment_both_ways(apps: Factory) -> None:
    client = await apps()
    host, bob = [await register(client, n) for n in ("hostb", "bobbo")]
    code = (await create(client, host))[1]["code"]
    queued = await client.post("/api/v1/queue", json={"mode": "duel"}, headers=bearer(host))
    body = await _json(queued)
    assert (queued.status, body["code"]) == (409, "already_in_match")
    assert body["assignment"]["private"] == code
    # A queued player cannot take a seat until they leave the queue.
    assert (
        await client.post("/api/v1/queue", json={"mode": "standard"}, headers=bearer(bob))
    ).status == 201
    status, refused = await act(client, bob, code, "join")
    assert (status, refused["code"]) == (409, "already_queued")
    assert (await client.delete("/api/v1/queue", headers=bearer(bob))).status == 200
    assert (await act(client, bob, code, "join"))[0] == 200
    # A seated player can neither queue nor open another room.
    again = await client.post("/api/v1/queue", json={"mode": "standard"}, headers=bearer(bob))
    assert (await _json(again))["code"] == "already_in_match"
    assert (await create(client, bob))[1]["code"] == "already_in_match"
    # Leaving gives the seat and the queue back; the host's cancel closes it for everyone.
    status, left = await act(client, bob, code, "leave")
    assert status == 200 and [m["username"] for m in left["joined"]] == ["hostb"]
    assert await assignment(client, bob) is None
    assert (
        await client.post("/api/v1/queue", json={"mode": "standard"}, headers=bearer(bob))
    ).status == 201
    not_host = await client.delete(f"{BASE}/{code}", headers=bearer(bob))
    assert (not_host.status, (await _json(not_host))["code"]) == (403, "not_host")
    cancelled = await client.delete(f"{BASE}/{code}", headers=bearer(host))
    assert cancelled.status == 200 and (await _json(cancelled))["state"] == "cancelled"
    assert await assignment(client, host) is None
    assert (
        await client.post("/api/v1/queue", json={"mode": "duel"}, headers=bearer(host))
    ).status == 201
    status, closed = await act(client, bob, code, "join")
    assert (status, closed["code"]) == (410, "private_closed")


async def test_the_size_is_never_exceeded(apps: Factory) -> None:
    client = await apps()
    host = await register(client, "hostc")
    status, created = await create(client, host, mode="arena", size=3)
    assert status == 201 and created["size"] == 3 and created["min"] == 2
    players = [await register(client, f"guest{i}") for i in range(8)]
    results = await asyncio.gather(*(act(client, p, created["code"], "join") for p in players))
    assert sorted(s for s, _ in results) == [200, 200] + [409] * 6
    assert {b["code"] for s, b in results if s == 409} == {"private_full"}
    final = await room(client, host, created["code"])
    assert len(final["joined"]) == 3
    seated = {m["user_id"] for m in final["joined"]}
    for p in players:
        a = await assignment(client, p)
        assert (a is not None) == (p["user"]["id"] in seated)


async def test_requests_are_validated(apps: Factory) -> None:
    client = await apps()
    host = await register(client, "hostd")
    await register(client, "other")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"size": 3}, "invalid_size"),
        ({"mode": "nope"}, "unknown_mode"),
        ({"format": "auto"}, "unknown_format"),
        ({"invite": ["nobody_here"]}, "unknown_player"),
        ({"invite": ["hostd"]}, "invite_self"),
        (
            {"mode": "arena", "size": 2, "invite": [f"guest{i}" for i in range(10)]},
            "too_many_invites",
        ),
    ]
    for body, code in cases:
        status, problem = await create(client, host, **body)
        assert (status, problem["code"]) == (422, code), (body, problem)
    status, missing = await act(client, host, "BCDFGHJK", "join")
    assert (status, missing["code"]) == (404, "private_not_found")


async def test_creation_and_joins_are_rate_limited(apps: Factory) -> None:
    client = await apps(private_create_limit=2, private_join_limit=3)
    host = await register(client, "hoste")
    assert (await create(client, host))[0] == 201
    assert (await create(client, host))[1]["code"] == "already_in_match"
    status, limited = await create(client, host)
    assert (status, limited["code"]) == (429, "rate_limited") and limited["retry_after"] >= 1
    guesser = await register(client, "guess")
    codes = [(await act(client, guesser, "BCDFGHJK", "join"))[0] for _ in range(4)]
    assert codes == [404, 404, 404, 429]


async def test_the_countdown_starts_it_once_with_two_replicas(
    apps: Factory, orchestrator: ProcessOrchestrator
) -> None:
    catalogue = quick_catalogue(countdown_ms=1500)
    one = await apps(catalogue, private_tick_ms=50)
    two = await apps(catalogue, private_tick_ms=50)
    host, bob = await register(one, "hostf"), await register(one, "bobbf")
    code = (await create(one, host))[1]["code"]
    assert (await act(two, bob, code, "join"))[0] == 200
    done = await eventually(lambda: _started(two, bob, code))
    match_id = done["match_id"]
    assert [spec.match_id for spec in orchestrator.started] == [match_id]
    assert sorted(orchestrator.started[0].players) == sorted(
        [host["user"]["id"], bob["user"]["id"]]
    )
    texts = [await (await c.get("/metrics")).text() for c in (one, two)]
    started = sum(
        float(line.split()[-1])
        for text in texts
        for line in text.splitlines()
        if line.startswith('lobby_private_matches_total{event="started"}')
    )
    assert started == 1.0


async def test_a_room_without_enough_players_expires(apps: Factory) -> None:
    client = await apps(quick_catalogue(countdown_ms=200), private_tick_ms=50, private_code_ttl_s=1)
    host = await register(client, "hostg")
    status, created = await create(client, host)
    assert status == 201 and created["expires_at"] - created["created_at"] == 1200

    async def expired() -> dict[str, Any] | None:
        r = await room(client, host, created["code"])
        return r if r["state"] == "expired" else None

    await eventually(expired, within=10)
    assert await assignment(client, host) is None
    assert (
        await client.post("/api/v1/queue", json={"mode": "duel"}, headers=bearer(host))
    ).status == 201

    async def counted() -> bool:
        metrics = await (await client.get("/metrics")).text()
        return 'lobby_private_matches_total{event="expired"} 1.0' in metrics

    assert await eventually(counted, within=5)


async def test_a_failed_formation_frees_the_players_without_queueing_them(
    apps: Factory, orchestrator: ProcessOrchestrator
) -> None:
    client = await apps()
    host, bob = [await register(client, n) for n in ("hosth", "bobbh")]
    orchestrator.behaviours[host["user"]["id"]] = "fail"
    code = (await create(client, host))[1]["code"]
    assert (await act(client, bob, code, "join"))[0] == 200
    assert (await act(client, host, code, "start"))[0] == 202

    async def cancelled() -> dict[str, Any] | None:
        r = await room(client, host, code)
        return r if r["state"] == "cancelled" else None

    await eventually(cancelled)
    for who in (host, bob):
        assert await assignment(client, who) is None
        status = await _json(await client.get("/api/v1/queue", headers=bearer(who)))
        assert status["tickets"] == []
        failed = await eventually(functools.partial(_note, client, who, "match_failed"))
        assert failed["payload"]["requeued"] is False  # sent after the room is cancelled


async def test_an_abandoned_private_formation_is_recovered_without_queueing(
    rds: aioredis.Redis, lobby_settings: LobbySettings
) -> None:
    """The replica that claimed the start died: any matcher's recovery releases the
    players, queues no one and cancels the room."""
    queues = Queues(rds, load_catalogue(None), lobby_settings)
    private = PrivateMatches(rds, lobby_settings, lobby_settings)
    host, guest = rules.Member("u-host", "host"), rules.Member("u-guest", "guest")
    spec = rules.validate(load_catalogue(None), "duel", "blitz", None, [], "host")
    room_ = await private.create(spec, host, [])
    room_, _ = await private.join(room_.code, guest)
    claim = await private.claim_start(room_)
    assert (await private.get(room_.code)).state == "starting"  # type: ignore[union-attr]
    assert await queues.recover_stale(older_than_ms=-1) == [claim.match_id]
    assert (await private.get(room_.code)).state == "cancelled"  # type: ignore[union-attr]
    for who in (host, guest):
        status = await queues.status(who.user_id)
        assert (status.tickets, status.assignment) == ([], None)
    assert await queues.forming() == {}
