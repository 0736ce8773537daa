"""Probes and metrics on the app; `tradearena lobby` runs it from the environment and
stops cleanly on SIGTERM; logs are JSON and never carry tokens or passwords."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tradearena.launcher.cli import main as cli_main
from tradearena.launcher.localservices import free_port
from tradearena.testing.lobby import (
    PASSWORD,
    Client,
    lobby_process_env,
    login,
    register,
    wait_ready,
)


async def test_metrics_count_requests_logins_and_latency(lobby_client: Client) -> None:
    await register(lobby_client, "amber")
    await login(lobby_client, "amber")
    resp = await lobby_client.post(
        "/api/v1/auth/login", json={"username": "amber", "password": "wrong password"}
    )
    assert resp.status == 401
    assert (await lobby_client.get("/healthz")).status == 200
    resp = await lobby_client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/plain"
    assert 'lobby_logins_total{outcome="ok"} 1.0' in text
    assert 'lobby_logins_total{outcome="failed"} 1.0' in text
    assert "lobby_registrations_total 1.0" in text
    assert (
        'lobby_http_requests_total{method="POST",route="/api/v1/auth/login",status="401"} 1.0'
        in text
    )
    assert 'lobby_http_request_duration_seconds_count{route="/api/v1/auth/login"} 2.0' in text
    assert "lobby_socketio_connections 0.0" in text


async def test_cli_runs_the_lobby_from_env_and_stops_on_sigterm(
    lobby_dsn: str, redis_url: str, signing_key_pem: str, tmp_path: Path
) -> None:
    port = free_port()
    env = lobby_process_env(
        lobby_dsn,
        redis_url,
        signing_key_pem,
        tmp_path,
        port,
        TRADEARENA_ARGON2_MEMORY_KIB="1024",
        TRADEARENA_ARGON2_TIME_COST="1",
        TRADEARENA_MIGRATE_ON_START="true",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tradearena.launcher.cli",
        "lobby",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, proc)
        async with aiohttp.ClientSession(base_url=base) as session:
            async with session.post(
                "/api/v1/auth/register", json={"username": "cli_user", "password": PASSWORD}
            ) as resp:
                tokens = await resp.json()
                assert resp.status == 201
            async with session.post(
                "/api/v1/auth/login", json={"username": "cli_user", "password": "bad password!"}
            ) as resp:
                assert resp.status == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, out.decode()[-3000:]
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert any(e.get("message") == "account created" for e in lines)
    assert all(e.get("component") == "lobby" for e in lines)
    text = out.decode()
    for secret in (tokens["access_token"], tokens["refresh_token"], PASSWORD, "bad password!"):
        assert secret not in text


async def test_cli_promotes_the_first_admin(
    lobby_client: Client, lobby_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await register(lobby_client, "first_admin")
    monkeypatch.setenv("TRADEARENA_DATABASE_URL", lobby_dsn)
    assert cli_main(["lobby", "--promote-admin", "FIRST_ADMIN"]) == 0
    assert cli_main(["lobby", "--promote-admin", "nobody_here"]) == 2
    assert cli_main(["lobby", "--promote-admin", "F\u0130RST_ADMIN"]) == 2  # dotted capital I
    tokens = await login(lobby_client, "first_admin")
    assert tokens["user"]["role"] == "admin" and tokens["user"]["id"] == user["user"]["id"]
    resp = await lobby_client.get(
        "/api/v1/admin/audit", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert resp.status == 200
