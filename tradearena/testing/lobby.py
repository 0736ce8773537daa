"""Helpers for lobby tests: settings, accounts, tokens."""

from __future__ import annotations

from typing import Any

import psycopg
from aiohttp import web
from aiohttp.test_utils import TestClient

from lobby.settings import LobbySettings

Client = TestClient[web.Request, web.Application]
PASSWORD = "correct horse battery"


def test_settings(dsn: str, redis_url: str, pem: str, **overrides: Any) -> LobbySettings:
    """Lobby settings for tests: argon2 kept argon2id but cheap (t=1, 1 MiB) so a test
    can register dozens of users; everything else as in production."""
    values: dict[str, Any] = {
        "database_url": dsn,
        "redis_url": redis_url,
        "signing_key_pem": pem,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "db_pool_min": 1,
        "db_pool_max": 5,
        "log_format": "text",
        **overrides,
    }
    return LobbySettings(**values)


async def register(client: Client, username: str, password: str = PASSWORD) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/auth/register", json={"username": username, "password": password}
    )
    body: dict[str, Any] = await resp.json(content_type=None)
    assert resp.status == 201, body
    return body


async def login(client: Client, username: str, password: str = PASSWORD) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    body: dict[str, Any] = await resp.json(content_type=None)
    assert resp.status == 200, body
    return body


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def make_admin(dsn: str, user_id: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE users SET role = 'admin' WHERE id = %s", (user_id,))


async def admin_tokens(client: Client, dsn: str, username: str = "root_admin") -> dict[str, Any]:
    """An admin account (promoted in the database, then logged in to get an admin token)."""
    first = await register(client, username)
    make_admin(dsn, first["user"]["id"])
    return await login(client, username)
