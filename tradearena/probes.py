"""The probe app of the processes that serve no HTTP of their own (feed relay, results
worker, operator): /healthz (alive), /readyz (from the component's readiness check)
and /metrics (its Prometheus registry), served on their own port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Body = Mapping[str, Any]
Readiness = Callable[[], Awaitable[tuple[bool, Body]]]


def probe_app(
    registry: CollectorRegistry,
    readiness: Readiness,
    health: Callable[[], Body] = dict,
) -> web.Application:
    """`health()` adds fields to /healthz; `readiness()` says (ready, body) for /readyz."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **health()})

    async def readyz(_: web.Request) -> web.Response:
        ready, body = await readiness()
        return web.json_response(dict(body), status=200 if ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


@asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[None]:
    """Serve `app` for the duration of the block, then run its cleanups. A request still
    in flight at the end gets a second, not aiohttp's default minute: probes and scrapes
    are quick, and a stopping process must not wait on one."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()
