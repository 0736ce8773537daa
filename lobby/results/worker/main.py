"""`tradearena results-worker`: the consumer loop, its probes and live notifications."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from lobby.results.worker.consumer import Publish, ResultsWorker
from lobby.results.worker.settings import ResultsWorkerSettings
from lobby.results.worker.store import StoredNotification
from tradearena import redisconn
from tradearena.contracts import keys
from tradearena.modes import Catalogue
from tradearena.probes import Body, Readiness, probe_app, serving
from tradearena.socketio_redis import redis_manager

log = logging.getLogger("lobby.results")


def socketio_publisher(redis_url: str) -> Publish:
    """Live `notification` events to the players' `/lobby` rooms on every lobby replica,
    through python-socketio's Redis manager (write-only: this process serves no client)."""
    manager = redis_manager(redis_url, keys.SOCKETIO_CHANNEL, write_only=True)

    async def publish(notes: Sequence[StoredNotification]) -> None:
        for n in notes:
            await manager.emit(
                "notification", n.event(), room=f"user:{n.user_id}", namespace="/lobby"
            )

    return publish


def readiness(worker: ResultsWorker) -> Readiness:
    """Ready when both Redis and PostgreSQL answer."""

    async def check() -> tuple[bool, Body]:
        checks = {"redis": "ok", "postgres": "ok"}
        try:
            await worker.redis.ping()
        except Exception as exc:
            checks["redis"] = repr(exc)
        try:
            pool = await worker.pool()
            async with pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")
        except Exception as exc:
            checks["postgres"] = repr(exc)
        ok = all(v == "ok" for v in checks.values())
        return ok, {"status": "ready" if ok else "not_ready", "checks": checks}

    return check


async def serve(settings: ResultsWorkerSettings, catalogue: Catalogue, stop: asyncio.Event) -> int:
    """Until `stop` (SIGTERM/SIGINT): finish the entry in hand, leave the rest pending."""
    client = redisconn.connect(settings.redis_url, socket_connect_timeout=5)
    publish = socketio_publisher(settings.redis_url) if settings.socketio_redis else None
    worker = ResultsWorker(client, catalogue, settings, publish=publish)

    async def stop_worker() -> None:
        await stop.wait()
        worker.stop()

    stopper = asyncio.create_task(stop_worker(), name="stop")
    gauges = asyncio.create_task(worker.watch_dead_letter(), name="dead-letter-gauges")
    try:
        async with contextlib.AsyncExitStack() as probes:
            if settings.results_metrics_port:  # 0: no probe server
                app = probe_app(worker.metrics.registry, readiness(worker))
                await probes.enter_async_context(
                    serving(app, settings.results_metrics_host, settings.results_metrics_port)
                )
            log.info("results worker started", extra={"consumer": settings.results_consumer})
            await worker.run()
    finally:
        stopper.cancel()
        gauges.cancel()
        await worker.close()
        await client.aclose()
    log.info("results worker stopped")
    return 0
