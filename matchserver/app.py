"""The match-server process: aiohttp + python-socketio around a `MatchHost`.

`create_app(settings)` builds everything from settings (connections live in
`cleanup_ctx`, state in typed AppKeys); `serve(settings)` runs it: a dedicated
server until its match is over and its result published, a pool server until
SIGTERM has settled every match it hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import socketio
from aiohttp import web

from matchserver import heap
from matchserver.agones import AgonesSDK
from matchserver.agones_pool import PoolReport
from matchserver.handlers import MatchNamespace
from matchserver.host import MatchHost
from matchserver.metrics import MatchMetrics
from matchserver.origins import origin_guard
from matchserver.runner import cancel_quietly, wall_ms
from matchserver.settings import MatchServerSettings
from matchserver.tls import CertificateReloader, LoadedCertificate
from tradearena import redisconn
from tradearena.badinput import BadInputLog, socketio_loggers
from tradearena.probes import probe_app, serving
from tradearena.sockets import GuardedServer
from tradearena.tokens import Verifier

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", MatchServerSettings)
METRICS = web.AppKey("metrics", MatchMetrics)
SIO = web.AppKey("sio", socketio.AsyncServer)
REDIS: web.AppKey[redisconn.AnyRedis] = web.AppKey("redis")
HOST = web.AppKey("host", MatchHost)
CLOCK: web.AppKey[Callable[[], int]] = web.AppKey("clock")
CLOSE_SOCKETS_S = 2.0
EXIT_BAD_CERTIFICATE = 2  # like a bad setting: the pod restarts until the Secret is right


def load_verifier(settings: MatchServerSettings) -> Verifier:
    if settings.jwks_file is not None:
        import json

        return Verifier.from_jwks(json.loads(settings.jwks_file.read_text()))
    if settings.public_key_file is not None:
        return Verifier.from_public_pem(settings.public_key_file.read_bytes())
    raise ValueError("set TRADEARENA_PUBLIC_KEY_FILE or TRADEARENA_JWKS_FILE to verify tokens")


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    redis = redisconn.connect(app[SETTINGS].redis_url)
    app[REDIS] = redis
    yield
    await redis.aclose()


async def _gc_ctx(app: web.Application) -> AsyncIterator[None]:
    pauses = app[METRICS].gc_pause
    with heap.PauseWatch(lambda gen, s: pauses.labels(str(gen)).observe(s)):
        yield


async def _host_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, metrics, sio = app[SETTINGS], app[METRICS], app[SIO]
    host = MatchHost(settings, app[REDIS], sio, metrics, clock=app[CLOCK])
    app[HOST] = host
    namespace = MatchNamespace(host, load_verifier(settings), metrics)
    host.namespace = namespace
    sio.register_namespace(namespace)
    sio.fast_event(namespace.namespace, "tick_ack", "seq", namespace.fast_tick_ack)
    await host.start()
    tasks: list[asyncio.Task[Any]] = []
    session = aiohttp.ClientSession()
    sdk = None
    if settings.agones_sdk_port is not None:
        sdk = AgonesSDK(settings.agones_sdk_port, session, registry=metrics.registry)
        agones = _agones_pool(sdk, host) if host.pooled else _agones_dedicated(sdk, host)
        tasks.append(asyncio.create_task(agones, name="agones"))
    yield
    for task in tasks:
        await cancel_quietly(task)
    await host.close()
    if sdk is not None and host.pooled:
        await sdk.shutdown()
    await session.close()


async def _agones_dedicated(sdk: AgonesSDK, host: MatchHost) -> None:
    runner = next(iter(host.matches.values())).runner  # started before this task
    await runner.ready.wait()
    await sdk.ready()
    interval = host.settings.agones_health_interval_ms / 1000
    health = asyncio.create_task(sdk.health_loop(interval))
    try:
        await host.done.wait()
    finally:
        await cancel_quietly(health)
    await sdk.shutdown()


async def _agones_pool(sdk: AgonesSDK, host: MatchHost) -> None:
    """Ready once the server accepts matches; Counter `matches` and List `players` kept
    current until the process stops (then Shutdown, from the host's cleanup)."""
    report = PoolReport(sdk, host.capacity)
    host.on_count = report.matches
    host.on_seated = report.player
    await host.accepting.wait()
    await sdk.ready()
    report.matches(len(host.matches))
    interval = host.settings.agones_health_interval_ms / 1000
    await asyncio.gather(sdk.health_loop(interval), report.run())


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ready(app: web.Application) -> bool:
    """The host ready, and (when commits wait for replicas) Redis has those replicas:
    a server that would fault every match it took is not handed any."""
    host = app.get(HOST)
    return host is not None and host.ready() and await host.replica_check.ok()


async def readyz(request: web.Request) -> web.Response:
    ready = await _ready(request.app)
    return web.json_response({"ready": ready}, status=200 if ready else 503)


def admin_app(app: web.Application) -> web.Application:
    """The admin port's app: /metrics and /status (with /healthz and /readyz) of the
    match server `app`, for the operator and Prometheus only (the chart's NetworkPolicy)."""

    async def ready() -> tuple[bool, dict[str, Any]]:
        ready = await _ready(app)
        return ready, {"ready": ready}

    async def status_view(_: web.Request) -> web.Response:
        return web.json_response(app[HOST].status())

    admin = probe_app(app[METRICS].registry, ready)
    admin.router.add_get("/status", status_view)
    return admin


@web.middleware
async def no_websocket_compression(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    """Drop permessage-deflate from the handshake: compressing every frame per client
    costs more CPU than the bytes it saves for small JSON events."""
    if "Sec-WebSocket-Extensions" in request.headers:
        headers = request.headers.copy()
        del headers["Sec-WebSocket-Extensions"]
        request = request.clone(headers=headers)
    response: web.StreamResponse = await handler(request)
    return response


def create_app(
    settings: MatchServerSettings, *, clock: Callable[[], int] = wall_ms
) -> web.Application:
    app = web.Application(middlewares=[no_websocket_compression])
    app[SETTINGS] = settings
    app[CLOCK] = clock
    metrics = app[METRICS] = MatchMetrics()
    bad_input = BadInputLog(
        logging.getLogger("matchserver.badinput"),
        lambda source, error: metrics.bad_input.labels(source, error).inc(),
    )
    sio_log, eio_log = socketio_loggers("matchserver")
    sio = GuardedServer(
        async_mode="aiohttp",
        cors_allowed_origins=list(settings.cors_origins),  # their CORS headers; see origins
        logger=sio_log,
        engineio_logger=eio_log,
        on_refused=lambda code: metrics.event_refusals.labels(code).inc(),
    )
    sio.attach(app)
    app[SIO] = sio
    refused = metrics.connection_refusals
    app.middlewares.append(origin_guard(settings.cors_origins, lambda c: refused.labels(c).inc()))

    async def bad_input_ctx(app: web.Application) -> AsyncIterator[None]:
        bad_input.watch(sio_log, "socketio")
        bad_input.watch(eio_log, "socketio")
        bad_input.watch_http()
        try:
            yield
        finally:
            bad_input.unwatch()

    app.cleanup_ctx.append(bad_input_ctx)
    app.cleanup_ctx.append(_gc_ctx)
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_host_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def certificate_reloader(
    settings: MatchServerSettings, metrics: MatchMetrics
) -> CertificateReloader | None:
    """The players' port's TLS context (None: plaintext), reporting reloads in metrics."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None

    def on_reload(outcome: str, certificate: LoadedCertificate | None) -> None:
        metrics.tls_reloads.labels(outcome).inc()
        if certificate is not None:
            metrics.tls_not_after.set(certificate.not_after.timestamp())

    reloader = CertificateReloader(settings.tls_cert_file, settings.tls_key_file, on_reload)
    if reloader.certificate is not None:
        metrics.tls_not_after.set(reloader.certificate.not_after.timestamp())
    return reloader


async def serve(settings: MatchServerSettings, stop: asyncio.Event) -> int:
    """Run until the match is over and published (a pool server: until stopped); `stop`
    (SIGTERM/SIGINT) ends every hosted match first (cancelled if its cancel key says so,
    else settled as a shutdown)."""
    app = create_app(settings)
    try:
        reloader = certificate_reloader(settings, app[METRICS])
    except (OSError, ValueError, ssl.SSLError) as exc:
        log.error(
            "tls certificate could not be loaded",
            extra={"cert_file": str(settings.tls_cert_file), "error": repr(exc)},
        )
        return EXIT_BAD_CERTIFICATE
    web_runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
    await web_runner.setup()
    site = web.TCPSite(
        web_runner,
        settings.host,
        settings.port,
        ssl_context=reloader.context if reloader is not None else None,
    )
    await site.start()
    watcher = None
    if reloader is not None:
        watcher = asyncio.create_task(
            reloader.watch(settings.tls_reload_interval_s), name="tls-reload"
        )
    host = app[HOST]
    admin = contextlib.AsyncExitStack()
    if settings.admin_port is not None:
        await admin.enter_async_context(serving(admin_app(app), settings.host, settings.admin_port))
    name = {"server_id": settings.server_id} if host.pooled else {"match_id": settings.match_id}
    log.info("match server listening", extra={**name, "port": settings.port, "tls": settings.tls})
    try:
        await _until_over(host, stop)
        await _close_every_socket(app[SIO])
        log.info("sockets closed", extra=name)
    finally:
        if watcher is not None:
            await cancel_quietly(watcher)
        with contextlib.suppress(Exception):
            await admin.aclose()
        log.info("admin port closed", extra=name)
        with contextlib.suppress(Exception):
            await web_runner.cleanup()
    log.info("match server stopped", extra=name)
    return 0


async def _close_every_socket(sio: socketio.AsyncServer) -> None:
    """Close every socket so the HTTP server can stop, each after what is queued for it.
    Bounded: Engine.IO waits for a socket's queue to drain, which never happens for a
    client that is closing its end at that moment."""
    if not sio.eio.sockets:
        return
    closing = asyncio.create_task(sio.eio.disconnect())
    done, _ = await asyncio.wait({closing}, timeout=CLOSE_SOCKETS_S)
    if not done:
        log.warning("sockets not closed in time", extra={"sockets": len(sio.eio.sockets)})
        await cancel_quietly(closing)


async def _until_over(host: MatchHost, stop: asyncio.Event) -> None:
    """A dedicated server: until its match is over and gone, or `stop` settles it first.
    A pool server: until `stop`, which drains it (every match settled and published)."""
    if not host.pooled:
        stopped = asyncio.create_task(stop.wait())
        done = asyncio.create_task(host.done.wait())
        await asyncio.wait({stopped, done}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        done.cancel()
        if host.done.is_set():
            return
    else:
        await stop.wait()
    log.info("stopping: settling every hosted match", extra={"hosted": len(host.matches)})
    await host.drain()
