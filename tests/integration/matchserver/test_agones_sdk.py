"""Agones compatibility: Ready, Health and Shutdown over the SDK's REST API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import socketio
from aiohttp import web

from tradearena.testing.matchserver import MatchServerProcess


class FakeAgonesSidecar:
    """Speaks the Agones SDK REST API (POST /ready, /health, /shutdown with `{}`)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/json"
        assert await request.json() == {}
        self.calls.append(request.path)
        self.changed.set()
        return web.json_response({})

    async def wait_for(self, path: str, within: float = 20) -> None:
        async def seek() -> None:
            while path not in self.calls:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(seek(), within)


@pytest.fixture
async def sidecar() -> AsyncIterator[tuple[FakeAgonesSidecar, int]]:
    fake = FakeAgonesSidecar()
    app = web.Application()
    for path in ("/ready", "/health", "/shutdown"):
        app.router.add_post(path, fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield fake, port
    await runner.cleanup()


async def test_match_server_reports_to_the_agones_sdk(
    tmp_path: Path, redis_url: str, sidecar: tuple[FakeAgonesSidecar, int]
) -> None:
    fake, port = sidecar
    server = MatchServerProcess(
        tmp_path,
        redis_url,
        "m-agones",
        ("alice",),
        env_extra={
            "AGONES_SDK_HTTP_PORT": str(port),
            "TRADEARENA_AGONES_HEALTH_INTERVAL_MS": "200",
            "TRADEARENA_DURATION_MS": "2000",
        },
    )
    server.start(wait_ready=False)
    try:
        await fake.wait_for("/ready")
        await fake.wait_for("/health")
        assert fake.calls[0] == "/ready"
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(
            server.url,
            namespaces=["/match"],
            transports=["websocket"],
            auth={"token": server.token("alice")},
        )
        await fake.wait_for("/shutdown")
        assert fake.calls[-1] == "/shutdown"
        assert fake.calls.count("/health") >= 2
        await client.disconnect()
        assert await asyncio.to_thread(server.wait) == 0
    finally:
        server.stop()
