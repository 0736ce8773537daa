"""A pool server under Agones: Ready once it accepts matches, Health on an interval,
Shutdown after SIGTERM has settled its matches; Counter and List calls when the SDK
has them."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from matchserver.agones import AgonesSDK
from tradearena.testing.matchserver import pool_server


class Sidecar:
    """Records every request the SDK makes (any method, any path)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(request.path)
        self.changed.set()
        return web.json_response({})

    async def until(self, done: Callable[[list[str]], bool], within: float = 20) -> None:
        async def seek() -> None:
            while not done(self.calls):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(seek(), within)

    async def wait_for(self, path: str, within: float = 20) -> None:
        await self.until(lambda calls: path in calls, within)


@pytest.fixture
async def sidecar() -> AsyncIterator[tuple[Sidecar, int]]:
    fake = Sidecar()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield fake, port
    await runner.cleanup()


async def test_a_pool_server_reports_ready_health_and_shutdown(
    tmp_path: Path, redis_url: str, sidecar: tuple[Sidecar, int]
) -> None:
    fake, port = sidecar
    server = pool_server(
        tmp_path,
        redis_url,
        "pool-agones",
        env_extra={
            "AGONES_SDK_HTTP_PORT": str(port),
            "TRADEARENA_AGONES_HEALTH_INTERVAL_MS": "200",
        },
    )
    server.start()
    try:
        await fake.wait_for("/ready")
        await fake.wait_for("/health")
        assert fake.calls[0] == "/ready"
        if hasattr(AgonesSDK, "update_counter"):  # the Counter `matches`, once Ready
            await fake.until(lambda calls: any("matches" in c for c in calls))
        server.signal(signal.SIGTERM)
        await fake.wait_for("/shutdown")
        assert await asyncio.to_thread(server.wait) == 0
        assert fake.calls[-1] == "/shutdown"
    finally:
        server.stop()
