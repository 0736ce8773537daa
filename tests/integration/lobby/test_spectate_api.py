"""Live matches and spectator tokens in the real lobby app: REST on a real port, real
Redis and PostgreSQL, the match played on a real `tradearena matchserver` process
(the local runtime), its players on Socket.IO."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import socketio
from kubernetes_asyncio import client as k8s

from lobby import match_options
from lobby.match_options import MatchKind
from lobby.settings import LobbySettings
from lobby.state import SETTINGS, VERIFIER
from tradearena.contracts.orchestration import OrchestratorUnavailableError
from tradearena.launcher.localruntime import LocalProcessOrchestrator
from tradearena.orchestration.kubernetes import KubernetesOrchestrator
from tradearena.testing.lobby import Client, bearer, register
from tradearena.testing.local_runtime import local_runtime
from tradearena.testing.waiting import eventually
from tradearena.tokens import TokenError

LIVE = "/api/v1/matches/live"


def spectate_path(match_id: str) -> str:
    return f"/api/v1/matches/{match_id}/spectate"


@pytest.fixture
async def runtime(
    tmp_path: Path, redis_url: str, lobby_settings: LobbySettings
) -> AsyncIterator[LocalProcessOrchestrator]:
    async with local_runtime(tmp_path, redis_url, lobby_settings.signer(), max_retries=0) as rt:
        yield rt


async def _json(resp: Any) -> dict[str, Any]:
    body: dict[str, Any] = await resp.json(content_type=None)
    return body


async def test_live_list_and_spectator_tokens_of_a_real_match(
    lobby_client_factory: Callable[..., AbstractAsyncContextManager[Client]],
    runtime: LocalProcessOrchestrator,
    lobby_dsn: str,
) -> None:
    async with lobby_client_factory(
        orchestrator=runtime, live_cache_s=0, spectate_limit_user=5
    ) as client:
        alice, bob, eve, carol = [
            await register(client, n) for n in ("alice", "bob", "eve", "carol")
        ]
        ids = {
            n: t["user"]["id"]
            for n, t in (("alice", alice), ("bob", bob), ("eve", eve), ("carol", carol))
        }
        watcher = bearer(eve)

        assert (await _json(await client.get(LIVE, headers=watcher))) == {"matches": []}
        unknown = await client.post(spectate_path("no-such-match"), headers=watcher)
        assert unknown.status == 404 and (await _json(unknown))["code"] == "match_not_found"
        assert (await client.get(LIVE)).status == 401

        for p in (alice, bob):
            joined = await client.post(
                "/api/v1/queue", json={"mode": "duel", "format": "blitz"}, headers=bearer(p)
            )
            assert joined.status == 201

        async def ready(player: dict[str, Any]) -> dict[str, Any] | None:
            notes = await _json(await client.get("/api/v1/notifications", headers=bearer(player)))
            found = [n["payload"] for n in notes["items"] if n["kind"] == "match_ready"]
            return found[0] if found else None

        tickets = {
            n: await eventually(lambda p=p: ready(p), 60)
            for n, p in (("alice", alice), ("bob", bob))
        }
        match_id = tickets["alice"]["match_id"]

        # Ready, its players not there yet: not live, not listed.
        early = await client.post(spectate_path(match_id), headers=watcher)
        assert early.status == 409 and (await _json(early))["code"] == "match_not_live"
        assert (await _json(await client.get(LIVE, headers=watcher)))["matches"] == []

        sockets = []
        try:
            for name in ("alice", "bob"):
                sio = socketio.AsyncClient(reconnection=False)
                await sio.connect(
                    tickets[name]["url"],
                    namespaces=["/match"],
                    transports=["websocket"],
                    auth={"token": tickets[name]["token"]},
                )
                sockets.append(sio)

            async def listed() -> dict[str, Any] | None:
                page = await _json(await client.get(LIVE + "?mode=duel", headers=watcher))
                shown = [m for m in page["matches"] if m["match_id"] == match_id]
                return shown[0] if shown and shown[0]["players_connected"] == 2 else None

            entry = await eventually(listed, 30)
            assert (entry["mode"], entry["format"], entry["symbol"]) == ("duel", "blitz", "BTCUSDT")
            assert entry["phase"] == "live"
            assert sorted(p["username"] for p in entry["players"]) == ["alice", "bob"]
            assert entry["end_at"] - entry["started_at"] == 3 * 60_000
            assert entry["spectators"] == 0 and entry["spectator_cap"] > 0
            assert entry["spectate_delay_ms"] > 0
            other_mode = await _json(await client.get(LIVE + "?mode=standard", headers=watcher))
            assert other_mode["matches"] == []

            before = time.time()
            granted = await client.post(spectate_path(match_id), headers=watcher)
            grant = await _json(granted)
            assert granted.status == 200, grant
            assert grant["match_id"] == match_id and grant["url"] == tickets["alice"]["url"]
            assert grant["delay_ms"] == entry["spectate_delay_ms"]
            assert grant["players"] == {ids["alice"]: "alice", ids["bob"]: "bob"}
            app = client.server.app
            assert app is not None
            verifier = app[VERIFIER]
            claims = verifier.verify_spectator(grant["token"], match_id)
            assert claims["sub"] == ids["eve"] and claims["typ"] == "spectate"
            left_s = (entry["end_at"] / 1000 - before) + grant["delay_ms"] / 1000
            lifetime = claims["exp"] - claims["iat"]
            margin = app[SETTINGS].spectate_token_margin_s
            assert left_s + margin - 5 <= lifetime <= left_s + margin + 5, (lifetime, left_s)
            with pytest.raises(TokenError):  # a spectator can never act as a player
                verifier.verify_match(grant["token"], match_id)

            # The token opens the match server as a spectator: a delayed view, and the
            # list counts the spectator.
            spectator = socketio.AsyncClient(reconnection=False)
            await spectator.connect(
                grant["url"],
                namespaces=["/match"],
                transports=["websocket"],
                auth={"token": grant["token"]},
            )
            sockets.append(spectator)
            answer = await spectator.call("spectate_sync", {}, namespace="/match", timeout=10)
            assert answer["ok"], answer
            assert answer["state"]["match_id"] == match_id
            assert answer["state"]["at"] <= time.time() * 1000 - grant["delay_ms"]

            async def watched() -> bool:
                page = await _json(await client.get(LIVE, headers=watcher))
                return [m["spectators"] for m in page["matches"]] == [1]

            await eventually(watched, 10)

            # Private: never listed; only its players and those invited by name may watch.
            conn = await asyncpg.connect(lobby_dsn)
            try:
                await match_options.record(
                    conn, match_id, MatchKind.PRIVATE, ids["alice"], [ids["carol"]]
                )
            finally:
                await conn.close()
            assert (await _json(await client.get(LIVE, headers=watcher)))["matches"] == []
            refused = await client.post(spectate_path(match_id), headers=watcher)
            assert refused.status == 403 and (await _json(refused))["code"] == "private_match"
            own = await client.post(spectate_path(match_id), headers=bearer(bob))
            assert own.status == 200
            invited = await client.post(spectate_path(match_id), headers=bearer(carol))
            assert invited.status == 200, await _json(invited)

            # Eve's sixth spectate request in the window is refused.
            statuses = [(await client.post(spectate_path(match_id), headers=watcher)).status]
            limited = await client.post(spectate_path(match_id), headers=watcher)
            body = await _json(limited)
            assert statuses == [403] and limited.status == 429, body
            assert body["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1

            metrics = await (await client.get("/metrics")).text()
            for outcome, n in (
                ("issued", 3),
                ("match_not_found", 1),
                ("match_not_live", 1),
                ("private_match", 2),
                ("rate_limited", 1),
            ):
                assert f'lobby_spectate_tokens_total{{outcome="{outcome}"}} {n}.0' in metrics
        finally:
            for sio in sockets:
                await sio.disconnect()
            await runtime.cancel(match_id, "test over")


async def list_and_spectate(client: Client) -> tuple[Any, Any]:
    """A new player's two asks that need the runtime: the live list, and watching "m1"."""
    tokens = await register(client, "solo")
    return (
        await client.get(LIVE, headers=bearer(tokens)),
        await client.post(spectate_path("m1"), headers=bearer(tokens)),
    )


async def test_a_lobby_without_an_orchestrator_says_so(
    lobby_client_factory: Callable[..., AbstractAsyncContextManager[Client]],
) -> None:
    async with lobby_client_factory() as client:
        for resp in await list_and_spectate(client):
            assert resp.status == 503
            assert (await _json(resp))["code"] == "orchestrator_unavailable"


async def test_an_unreachable_kubernetes_api_is_a_503_not_a_500(
    lobby_client_factory: Callable[..., AbstractAsyncContextManager[Client]],
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configuration = k8s.Configuration(host=f"http://127.0.0.1:{port}")
    orchestrator = KubernetesOrchestrator(k8s.ApiClient(configuration), "tradearena")
    try:
        with pytest.raises(OrchestratorUnavailableError):
            await orchestrator.status("m1")
        with pytest.raises(OrchestratorUnavailableError):
            await orchestrator.list_active()
        async with lobby_client_factory(orchestrator=orchestrator, live_cache_s=0) as client:
            for resp in await list_and_spectate(client):
                assert resp.status == 503
                assert (await _json(resp))["code"] == "dependency_unavailable"
                assert resp.headers["Retry-After"] == "1"
    finally:
        await orchestrator.close()


async def test_the_live_list_is_built_once_for_many_callers_within_its_cache_time(
    lobby_client_factory: Callable[..., AbstractAsyncContextManager[Client]],
    runtime: LocalProcessOrchestrator,
) -> None:
    async with lobby_client_factory(orchestrator=runtime, live_cache_s=30) as client:
        tokens = await register(client, "fan")
        pages = await asyncio.gather(*(client.get(LIVE, headers=bearer(tokens)) for _ in range(8)))
        assert [p.status for p in pages] == [200] * 8
        metrics = await (await client.get("/metrics")).text()
        assert "lobby_live_list_builds_total 1.0" in metrics
        assert "lobby_live_matches 0.0" in metrics
