"""Helpers for lobby tests: settings, accounts, tokens."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp
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


def lobby_process_env(
    dsn: str, redis_url: str, pem: str, workdir: Path, port: int, **extra: str
) -> dict[str, str]:
    """The environment of a real `tradearena lobby` process on `port`."""
    key_file = workdir / "signing.pem"
    key_file.write_text(pem)
    return {
        **os.environ,
        "TRADEARENA_DATABASE_URL": dsn,
        "TRADEARENA_REDIS_URL": redis_url,
        "TRADEARENA_SIGNING_KEY_FILE": str(key_file),
        "TRADEARENA_PORT": str(port),
        **extra,
    }


async def wait_ready(url: str, proc: asyncio.subprocess.Process) -> None:
    """Until the lobby process at `url` answers /readyz with 200 (bounded, ~15 s)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            assert proc.returncode is None, "the lobby exited while starting"
            try:
                async with session.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)  # poll interval: readiness has no event to await
    raise AssertionError("the lobby did not become ready")
