"""The match-server process: aiohttp + python-socketio around one MatchRunner.

`create_app(settings)` builds everything from settings (connections live in
`cleanup_ctx`, state in typed AppKeys); `serve(settings)` runs it until the
match is over and its result is published, then exits.
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
from redis.asyncio import Redis

from matchserver import heap
from matchserver.agones import AgonesSDK
from matchserver.broadcast import FlowConfig, FrameWriter
from matchserver.engine.match import Match
from matchserver.feed.relay_source import RelaySource
from matchserver.feed.sources import FeedTick, sleep_until
from matchserver.feed.synthetic import SyntheticPrices
from matchserver.handlers import MatchNamespace, SocketEmitter
from matchserver.metrics import MatchMetrics
from matchserver.origins import origin_guard
from matchserver.runner import MatchRunner, RunnerConfig, cancel_quietly, wall_ms
from matchserver.settings import MatchServerSettings
from matchserver.store import MatchStore
from matchserver.tls import CertificateReloader, LoadedCertificate
from tradearena.badinput import BadInputLog, socketio_loggers
from tradearena.modes import load_catalogue
from tradearena.probes import probe_app, serving
from tradearena.sockets import GuardedServer
from tradearena.tokens import Verifier

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", MatchServerSettings)
METRICS = web.AppKey("metrics", MatchMetrics)
SIO = web.AppKey("sio", socketio.AsyncServer)
REDIS = web.AppKey("redis", Redis)
RUNNER = web.AppKey("runner", MatchRunner)
CLOCK: web.AppKey[Callable[[], int]] = web.AppKey("clock")
EXIT_BAD_CERTIFICATE = 2  # like a bad setting: the pod restarts until the Secret is right


def load_verifier(settings: MatchServerSettings) -> Verifier:
    if settings.jwks_file is not None:
        import json

        return Verifier.from_jwks(json.loads(settings.jwks_file.read_text()))
    if settings.public_key_file is not None:
        return Verifier.from_public_pem(settings.public_key_file.read_bytes())
    raise ValueError("set TRADEARENA_PUBLIC_KEY_FILE or TRADEARENA_JWKS_FILE to verify tokens")


def new_match(settings: MatchServerSettings, now: int) -> Match:
    catalogue = load_catalogue(settings.catalogue)
    mode = catalogue.mode(settings.mode)
    duration = settings.duration_ms or catalogue.duration_ms(settings.format)
    if len(settings.players) > mode.players.max:
        raise ValueError(f"mode {settings.mode} allows at most {mode.players.max} players")
    # Created a delay window in the past, so a feed history can warm the delay line.
    created = now - mode.rules.price_delay_ms - 1000
    return Match(settings.match_id, settings.mode, mode.rules, settings.players, duration, created)


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    redis = Redis.from_url(app[SETTINGS].redis_url)
    app[REDIS] = redis
    yield
    await redis.aclose()


async def _gc_ctx(app: web.Application) -> AsyncIterator[None]:
    pauses = app[METRICS].gc_pause
    with heap.PauseWatch(lambda gen, s: pauses.labels(str(gen)).observe(s)):
        yield


async def _match_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, clock, metrics = app[SETTINGS], app[CLOCK], app[METRICS]
    sio = app[SIO]
    emitter = SocketEmitter(sio)
    flow = FlowConfig(window=settings.tick_ack_window, stuck_ms=settings.stuck_client_ms)
    emitter.writer = FrameWriter(flow, metrics)
    store = MatchStore(app[REDIS], settings.match_id)
    config = RunnerConfig(
        format=settings.format,
        symbol=settings.symbol,
        join_timeout_ms=settings.join_timeout_ms,
        clock_interval_ms=settings.clock_interval_ms,
        leaderboard_interval_ms=settings.leaderboard_interval_ms,
        leaderboard_size=settings.leaderboard_size,
        snapshot_every_entries=settings.snapshot_every_entries,
        freeze_heap=True,
    )
    fresh = new_match(settings, clock())
    runner = await MatchRunner.open(fresh, store, emitter, metrics, config, clock)
    app[RUNNER] = runner
    namespace = MatchNamespace(runner, emitter, load_verifier(settings), metrics)
    sio.register_namespace(namespace)
    sio.fast_event(namespace.namespace, "tick_ack", "seq", namespace.fast_tick_ack)
    tasks: list[asyncio.Task[Any]] = []
    if runner.match.phase.over:
        # Restarted after the end: make sure the result went out, then finish.
        tasks.append(asyncio.create_task(runner.run_clock(), name="clock"))
    else:
        ticks = _ticks(settings, app[REDIS], fresh.rules.price_delay_ms, clock)
        tasks.append(asyncio.create_task(runner.run_feed(ticks), name="feed"))
        tasks.append(asyncio.create_task(runner.run_clock(), name="clock"))
    session = aiohttp.ClientSession()
    if settings.agones_sdk_port is not None:
        sdk = AgonesSDK(settings.agones_sdk_port, session, registry=metrics.registry)
        tasks.append(asyncio.create_task(_agones(sdk, runner, settings), name="agones"))
    yield
    for task in tasks:
        await cancel_quietly(task)
    await session.close()


def _ticks(
    settings: MatchServerSettings, redis: Redis, delay_ms: int, clock: Callable[[], int]
) -> AsyncIterator[FeedTick]:
    if settings.feed_source == "relay":
        # The relay's history covers the delay window: a (re)started server is ready at once.
        source = RelaySource(redis, settings.symbol, history_ms=delay_ms + 2000, clock=clock)
        return source.ticks()
    return _synthetic_with_history(settings, delay_ms, clock)


async def _synthetic_with_history(
    settings: MatchServerSettings, delay_ms: int, clock: Callable[[], int]
) -> AsyncIterator[FeedTick]:
    """In-process prices (no relay): a delay window of history first, then one tick per
    interval on the wall-clock grid, identified by its slot like the relay's."""
    interval = settings.synthetic_interval_ms
    prices = SyntheticPrices(seed=settings.synthetic_seed, step_ms=interval)
    slot = clock() // interval
    for k in range(slot - delay_ms // interval - 1, slot + 1):
        yield FeedTick(
            settings.symbol, prices.next_price(), k * interval, k * interval, "synthetic", k
        )
    while True:
        slot += 1
        await sleep_until(clock, slot * interval)
        yield FeedTick(
            settings.symbol, prices.next_price(), slot * interval, clock(), "synthetic", slot
        )


async def _agones(sdk: AgonesSDK, runner: MatchRunner, settings: MatchServerSettings) -> None:
    await runner.ready.wait()
    await sdk.ready()
    health = asyncio.create_task(sdk.health_loop(settings.agones_health_interval_ms / 1000))
    try:
        await runner.finished.wait()
    finally:
        await cancel_quietly(health)
    await sdk.shutdown()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _ready(app: web.Application) -> bool:
    runner = app.get(RUNNER)
    return runner is not None and runner.ready.is_set() and not runner.match.phase.over


async def readyz(request: web.Request) -> web.Response:
    ready = _ready(request.app)
    return web.json_response({"ready": ready}, status=200 if ready else 503)


def admin_app(app: web.Application) -> web.Application:
    """The admin port's app: /metrics and /status (with /healthz and /readyz) of the
    match server `app`, for the operator and Prometheus only (the chart's NetworkPolicy)."""

    async def ready() -> tuple[bool, dict[str, Any]]:
        ready = _ready(app)
        return ready, {"ready": ready}

    async def status_view(_: web.Request) -> web.Response:
        return web.json_response(app[RUNNER].status())

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
    app.cleanup_ctx.append(_match_ctx)
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
    """Run until the match is over and published; `stop` (SIGTERM/SIGINT) ends the match
    first (cancelled if the lobby asked for it, else settled as a shutdown)."""
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
    runner = app[RUNNER]
    admin = contextlib.AsyncExitStack()
    if settings.admin_port is not None:
        await admin.enter_async_context(serving(admin_app(app), settings.host, settings.admin_port))

    async def on_stop() -> None:
        await stop.wait()
        reason = await runner.store.cancel_reason()
        runner.request_stop(cancelled=reason is not None, reason=reason or "shutdown")

    stopper = asyncio.create_task(on_stop(), name="stop")
    log.info(
        "match server listening",
        extra={"match_id": settings.match_id, "port": settings.port, "tls": settings.tls},
    )
    try:
        await runner.finished.wait()
        await asyncio.sleep(settings.linger_ms / 1000)  # let clients read match_end
        if app[SIO].eio.sockets:
            await app[SIO].eio.disconnect()  # close every socket so the HTTP server can stop
        log.info("sockets closed", extra={"match_id": settings.match_id})
    finally:
        await cancel_quietly(stopper)
        if watcher is not None:
            await cancel_quietly(watcher)
        with contextlib.suppress(Exception):
            await admin.aclose()
        with contextlib.suppress(Exception):
            await web_runner.cleanup()
    log.info("match server stopped", extra={"match_id": settings.match_id})
    return 0
