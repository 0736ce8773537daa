"""Every error is a problem document with a stable code; bad input is never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from lobby.app import create_app
from lobby.settings import LobbySettings
from tradearena.launcher.localservices import LocalPostgres, LocalRedis
from tradearena.testing.lobby import Client, bearer, register

PROBLEM = "application/problem+json"


async def _code(resp: Any) -> tuple[int, str]:
    assert resp.content_type == PROBLEM, await resp.text()
    body = await resp.json(content_type=None)
    assert set(body) >= {"type", "title", "status", "detail", "code"}
    assert body["status"] == resp.status
    return resp.status, body["code"]


async def test_routing_and_body_errors(lobby_client: Client) -> None:
    c = lobby_client
    assert await _code(await c.get("/api/v1/nope")) == (404, "not_found")
    # A request target longer than the lobby answers: a problem, not the parser's echo.
    resp = await c.get("/api/v1/matches", params={"cursor": "x" * 9000})
    assert await _code(resp) == (400, "uri_too_long")
    assert "x" * 100 not in await resp.text()
    resp = await c.delete("/api/v1/auth/login")
    assert await _code(resp) == (405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]
    resp = await c.post(
        "/api/v1/auth/login", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert await _code(resp) == (400, "malformed_json")
    resp = await c.post(
        "/api/v1/auth/login", data=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert await _code(resp) == (400, "malformed_json")
    resp = await c.post(
        "/api/v1/auth/login", data="username=a", headers={"Content-Type": "text/plain"}
    )
    assert await _code(resp) == (415, "unsupported_media_type")
    resp = await c.post(
        "/api/v1/auth/login",
        data=b'{"username": "' + b"a" * 70_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert await _code(resp) == (413, "payload_too_large")
    resp = await c.post("/api/v1/auth/login", json=["not", "an", "object"])
    assert await _code(resp) == (422, "validation_failed")
    resp = await c.post("/api/v1/auth/login", json={"username": "x", "password": "hunter2", "x": 1})
    body = await resp.json(content_type=None)
    assert resp.status == 422 and "hunter2" not in await resp.text()
    assert body["errors"][0]["loc"] == ["x"]


async def test_query_and_path_errors(lobby_client: Client) -> None:
    auth = bearer(await register(lobby_client, "rita"))
    c = lobby_client
    resp = await c.get("/api/v1/notifications?limit=0", headers=auth)
    assert await _code(resp) == (422, "validation_failed")
    resp = await c.get("/api/v1/notifications?limit=abc", headers=auth)
    assert await _code(resp) == (422, "validation_failed")
    resp = await c.get("/api/v1/notifications?bogus=1", headers=auth)
    assert await _code(resp) == (400, "unknown_parameter")
    resp = await c.get("/api/v1/matches?cursor=!!!", headers=auth)
    assert await _code(resp) == (400, "invalid_cursor")
    resp = await c.get("/api/v1/matches/does-not-exist", headers=auth)
    assert await _code(resp) == (404, "match_not_found")
    resp = await c.get("/api/v1/matches/bad%20id", headers=auth)
    assert await _code(resp) == (422, "validation_failed")
    # PostgreSQL text cannot hold NUL: refused up front, never a database error.
    resp = await c.patch("/api/v1/me/settings", json={"display_name": "a\u0000b"}, headers=auth)
    assert await _code(resp) == (422, "validation_failed")
    resp = await c.get("/api/v1/matches/a%00b", headers=auth)
    assert await _code(resp) == (422, "validation_failed")
    resp = await c.get("/api/v1/matches?cursor=%00", headers=auth)
    assert await _code(resp) == (422, "validation_failed")


async def test_unexpected_exception_is_a_500_problem_without_detail(
    lobby_settings: LobbySettings,
) -> None:
    app = create_app(lobby_settings)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/api/v1/boom", boom)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/api/v1/boom")
        assert await _code(resp) == (500, "internal_error")
        assert "secret" not in await resp.text()


async def test_readiness_follows_redis_and_postgres(
    lobby_client: Client, redis_server: LocalRedis, postgres_server: LocalPostgres
) -> None:
    resp = await lobby_client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["checks"] == {
        "postgres": "ok",
        "redis": "ok",
    }
    redis_server.stop()
    try:
        resp = await lobby_client.get("/readyz")
        body = await resp.json(content_type=None)
        assert (resp.status, body["code"]) == (503, "not_ready")
        assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"] != "ok"
        # A login needs Redis (throttling): a 503 problem, not a 500.
        resp = await lobby_client.post(
            "/api/v1/auth/login", json={"username": "who", "password": "whatever123"}
        )
        assert await _code(resp) == (503, "dependency_unavailable")
        assert resp.headers["Retry-After"] == "1"
        assert (await lobby_client.get("/healthz")).status == 200  # alive, just not ready
    finally:
        redis_server.start()
    postgres_server.stop("fast")
    try:
        resp = await lobby_client.get("/readyz")
        body = await resp.json(content_type=None)
        assert (resp.status, body["code"]) == (503, "not_ready")
        assert body["checks"]["postgres"] != "ok" and body["checks"]["redis"] == "ok"
    finally:
        postgres_server.start()


@pytest.mark.parametrize(
    "body",
    [b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 6_000 + b"1" + b"}" * 6_000],
    ids=["arrays", "objects"],
)
async def test_deeply_nested_json_is_a_400_problem(lobby_client: Client, body: bytes) -> None:
    resp = await lobby_client.post(
        "/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    assert await _code(resp) == (400, "json_too_deep")


async def test_every_response_says_nosniff(lobby_client: Client) -> None:
    responses = [
        await lobby_client.get("/api/v1/openapi.json"),
        await lobby_client.get("/api/v1/nope"),
        await lobby_client.post("/api/v1/auth/login", json={"username": "x"}),
        await lobby_client.get("/metrics"),
        await lobby_client.get("/healthz"),
        await lobby_client.get("/"),
        await lobby_client.get("/socket.io/?EIO=4&transport=polling"),
    ]
    for resp in responses:
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", (resp.url, resp.status)
