"""`tradearena operator`: kopf with the Match handlers, plus /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import kopf
from aiohttp import web

from match_operator.handlers import build_registry
from match_operator.kube import KubeApi
from match_operator.poolcontroller import PoolController
from match_operator.runtime import Runtime
from match_operator.servers import ServerDirectory
from match_operator.settings import OperatorSettings
from tradearena import redisconn
from tradearena.probes import Body, probe_app, serving
from tradearena.process import run_process

log = logging.getLogger(__name__)


def build_app(runtime: Runtime) -> web.Application:
    """Probes: alive while the process runs, ready once port allocations are rebuilt."""

    async def ready() -> tuple[bool, Body]:
        return runtime.started, {"ready": runtime.started}

    return probe_app(runtime.metrics.registry, ready, health=lambda: {"rebuilt": runtime.started})


async def serve(
    settings: OperatorSettings, stop: asyncio.Event, directory: ServerDirectory | None = None
) -> int:
    """Until `stop` (SIGTERM/SIGINT; kopf also stops on them itself). `directory`: the
    pool servers new Matches are allocated to (None: every Match gets a pod of its own)."""
    if logging.getLogger().level <= logging.INFO:  # a line per handled event is noise
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kube = await KubeApi.connect()
    redis = redisconn.connect(settings.redis_url) if settings.redis_url else None
    runtime = Runtime(settings, kube, redis)
    pools = PoolController(
        settings,
        kube,
        redis,
        runtime.ports,
        runtime.metrics,
        on_server_changed=runtime.server_changed,
    )
    runtime.directory = directory if directory is not None else pools
    registry = build_registry(runtime, pools)
    async with serving(build_app(runtime), settings.metrics_host, settings.metrics_port):
        timers = asyncio.create_task(runtime.run_timers(), name="match-timers")
        priority = settings.priority if settings.priority is not None else random.randint(1, 2**30)  # noqa: S311
        log.info(
            "operator starting",
            extra={
                "namespaces": list(settings.namespaces),
                "priority": priority,
                "standalone": settings.standalone,
            },
        )
        try:
            await kopf.operator(
                registry=registry,
                namespaces=list(settings.namespaces),
                clusterwide=False,
                standalone=settings.standalone,
                priority=priority,
                peering_name=settings.peering,
                stop_flag=stop,
            )
        finally:
            timers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timers
    return 0


def run() -> int:
    """`tradearena operator`: settings from TRADEARENA_OPERATOR_*, through the process shell."""
    return run_process("operator", OperatorSettings, serve)
