"""`tradearena operator`: kopf with the Match handlers, plus /healthz and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import kopf
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis

from match_operator.handlers import build_registry
from match_operator.kube import KubeApi
from match_operator.runtime import Runtime
from match_operator.settings import OperatorSettings

log = logging.getLogger(__name__)


def build_app(runtime: Runtime) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "rebuilt": runtime.started})

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(runtime.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(settings: OperatorSettings) -> None:
    if logging.getLogger().level <= logging.INFO:  # a line per handled event is noise
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kube = await KubeApi.connect()
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    runtime = Runtime(settings, kube, redis)
    registry = build_registry(runtime)
    runner = web.AppRunner(build_app(runtime), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.metrics_host, settings.metrics_port)
    await site.start()
    timers = asyncio.create_task(runtime.run_timers(), name="match-timers")
    priority = settings.priority if settings.priority is not None else random.randint(1, 2**30)  # noqa: S311
    log.info("operator starting", extra={"namespaces": list(settings.namespaces),
                                         "priority": priority,
                                         "standalone": settings.standalone})  # fmt: skip
    try:
        await kopf.operator(
            registry=registry,
            namespaces=list(settings.namespaces),
            clusterwide=False,
            standalone=settings.standalone,
            priority=priority,
            peering_name=settings.peering,
        )
    finally:
        timers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timers
        await runner.cleanup()


def run(settings: OperatorSettings) -> int:
    asyncio.run(serve(settings))
    return 0
