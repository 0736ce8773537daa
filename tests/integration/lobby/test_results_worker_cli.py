"""`tradearena results-worker` as a real process: stores results, pushes the players'
`match_result` notifications live to their `/lobby` sockets, serves probes and
metrics, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import socketio
from aiohttp.test_utils import TestClient, TestServer

from lobby.app import create_app
from lobby.settings import LobbySettings
from tradearena.contracts import keys
from tradearena.launcher.localservices import free_port
from tradearena.testing.lobby import register
from tradearena.testing.results_factory import make_result


async def test_cli_worker_stores_and_pushes_results_live(
    lobby_settings: LobbySettings, lobby_dsn: str, redis_url: str
) -> None:
    settings = lobby_settings.model_copy(update={"socketio_redis": True})
    port = free_port()
    env = {
        **os.environ,
        "TRADEARENA_DATABASE_URL": lobby_dsn,
        "TRADEARENA_REDIS_URL": redis_url,
        "TRADEARENA_SOCKETIO_REDIS": "true",
        "TRADEARENA_RESULTS_METRICS_PORT": str(port),
        "TRADEARENA_LOG_FORMAT": "text",
    }
    async with TestClient(TestServer(create_app(settings))) as client:
        users = [await register(client, name) for name in ("gina", "hugo")]
        sio = socketio.AsyncClient(reconnection=False)
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        async def on_notification(data: Any) -> None:
            await inbox.put(data)

        sio.on("notification", on_notification, namespace="/lobby")
        await sio.connect(
            str(client.make_url("/")),
            namespaces=["/lobby"],
            auth={"token": users[0]["access_token"]},
            transports=["websocket"],
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tradearena.launcher.cli", "results-worker", env=env
        )
        rds = aioredis.Redis.from_url(redis_url)
        try:
            result = make_result("m-cli", [u["user"]["id"] for u in users], seed=5)
            await rds.xadd(keys.RESULTS_STREAM, {"result": result.model_dump_json()})
            note = await asyncio.wait_for(inbox.get(), 30)
            assert note["kind"] == "match_result"
            assert note["payload"]["match_id"] == "m-cli" and note["id"] > 0
            me = users[0]["user"]["id"]
            assert note["payload"]["rank"] == next(
                s.rank for s in result.standings if s.player == me
            )
            async with aiohttp.ClientSession() as http:
                deadline = time.monotonic() + 20
                while True:  # the probe server may still be starting
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                            metrics = await resp.text()
                        break
                    except aiohttp.ClientConnectionError:
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.1)
                assert "tradearena_results_processed_total 1.0" in metrics
                assert "tradearena_results_dead_letter_entries 0.0" in metrics
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    assert resp.status == 200
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await sio.disconnect()
            await rds.aclose()
