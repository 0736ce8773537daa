"""The lobby's aiohttp application: `create_app(settings, *, orchestrator, catalogue)`.

Everything the app needs is passed in: the settings (built once at start-up),
the orchestrator that runs matches (none: this replica only serves) and the
mode catalogue (the one the settings name by default). State lives on the app
under typed keys (`lobby.state`): SETTINGS, CATALOGUE, SIGNER, VERIFIER,
HASHER, API, METRICS, SIO (and ORCHESTRATOR when given) now; DB (asyncpg
pool), REDIS, LIMITER, QUEUES and MATCHMAKER once the app starts (cleanup
contexts open and close them). No module globals.

Route modules are listed once, in order, in `ROUTE_MODULES` below (imported,
so a missing module fails at import). Each exposes
`add_routes(app: web.Application) -> None`: it registers REST operations with
`app[API].add(app, Operation(...))` (documented in OpenAPI, validated,
authenticated), Socket.IO handlers on `app[SIO]` (namespace
`lobby.http.sockets.NAMESPACE`), and may append to `app.cleanup_ctx` for its
own background tasks. The order is the order of the OpenAPI document and of
start-up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Protocol

import asyncpg
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from lobby import watch
from lobby.accounts import admin, notifications
from lobby.accounts import routes as accounts
from lobby.accounts.passwords import Argon2Params, Hasher
from lobby.http import ops, webclient
from lobby.http.api import Api
from lobby.http.middleware import (
    PARSER_LINE_LIMIT,
    error_middleware,
    metrics_middleware,
    rate_limit_middleware,
    tracing_middleware,
)
from lobby.http.ratelimit import Limiter
from lobby.http.sockets import create_sio
from lobby.market import candles
from lobby.matchmaking import admin_routes as match_admin
from lobby.matchmaking import party_routes as parties
from lobby.matchmaking import private_routes as private_matches
from lobby.matchmaking import routes as matchmaking
from lobby.matchmaking import spectate_routes as spectate
from lobby.metrics import LobbyMetrics
from lobby.migrate import apply_migrations
from lobby.results import history, leaderboards, profiles, replay_routes
from lobby.settings import LobbySettings
from lobby.state import (
    API,
    BAD_INPUT,
    CATALOGUE,
    DB,
    HASHER,
    LIMITER,
    METRICS,
    ORCHESTRATOR,
    REDIS,
    SETTINGS,
    SIGNER,
    SIO,
    VERIFIER,
)
from tradearena import redisconn
from tradearena.badinput import BadInputLog, socketio_loggers
from tradearena.contracts.orchestration import Orchestrator
from tradearena.modes import Catalogue, load_catalogue

log = logging.getLogger("lobby.app")

# How long requests in flight (a socket.io connection is one) may take to finish when the
# lobby stops (`tradearena lobby` and `up` alike), instead of aiohttp's default minute.
SHUTDOWN_TIMEOUT_S = 10.0


class RouteModule(Protocol):
    """What a route module exposes (mypy checks each module of the list against it)."""

    def add_routes(self, app: web.Application) -> None: ...


# ---- Route modules, in order: each one's `add_routes(app)` is called once. ----
ROUTE_MODULES: tuple[RouteModule, ...] = (
    ops,
    accounts,
    notifications,
    history,
    replay_routes,
    admin,
    matchmaking,
    parties,
    private_matches,
    match_admin,
    spectate,
    leaderboards,
    profiles,
    candles,
    webclient,
    watch,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _postgres(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.migrate_on_start:
        applied = apply_migrations(settings.database_url)
        log.info("migrations applied", extra={"applied": applied})
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        init=_init_connection,
        command_timeout=10,
    )
    app[DB] = pool
    try:
        yield
    finally:
        await pool.close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client: redisconn.AnyRedis
    if redisconn.is_cluster_url(settings.redis_url):
        # A pool per node, each bounded; a cluster client queues for a free connection
        # itself (up to its own timeout) rather than failing.
        client = redisconn.connect(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
        )
    else:
        # A bounded pool that waits for a free connection instead of failing: a burst
        # of logins or socket connects must queue, not error.
        pool = BlockingConnectionPool.from_url(
            redisconn.plain_url(settings.redis_url),
            max_connections=settings.redis_max_connections,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
        )
        client = Redis.from_pool(pool)  # closing the client closes the pool
    app[REDIS] = client
    app[LIMITER] = Limiter(client)
    try:
        yield
    finally:
        await client.aclose()


async def _hasher(app: web.Application) -> AsyncIterator[None]:
    try:
        yield
    finally:
        app[HASHER].close()


async def _nosniff(request: web.Request, response: web.StreamResponse) -> None:
    """Browsers take every response as the type it declares, never a guessed one."""
    response.headers["X-Content-Type-Options"] = "nosniff"


async def _bad_input(app: web.Application) -> AsyncIterator[None]:
    bad_input = app[BAD_INPUT]
    for logger in socketio_loggers("lobby"):
        bad_input.watch(logger, "socketio")
    bad_input.watch_http()
    try:
        yield
    finally:
        bad_input.unwatch()


def create_app(
    settings: LobbySettings,
    *,
    orchestrator: Orchestrator | None = None,
    catalogue: Catalogue | None = None,
) -> web.Application:
    """The lobby app. `orchestrator`: where matches run (the caller opens and closes
    it; without one this replica only serves). `catalogue`: the modes and formats
    (by default the one `settings.catalogue` names, else the packaged one)."""
    app = web.Application(
        middlewares=[
            tracing_middleware,
            metrics_middleware,
            error_middleware,
            rate_limit_middleware,
        ],
        client_max_size=settings.max_body_bytes,
        handler_args={"max_line_size": PARSER_LINE_LIMIT},
    )
    signer = settings.signer()
    app[SETTINGS] = settings
    app[CATALOGUE] = catalogue if catalogue is not None else load_catalogue(settings.catalogue)
    if orchestrator is not None:
        app[ORCHESTRATOR] = orchestrator
    app[SIGNER] = signer
    app[VERIFIER] = signer.verifier()
    app[HASHER] = Hasher(
        Argon2Params(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        ),
        workers=settings.hash_workers,
    )
    metrics = app[METRICS] = LobbyMetrics()
    app[BAD_INPUT] = BadInputLog(
        logging.getLogger("lobby.badinput"),
        lambda source, error: metrics.bad_input.labels(source, error).inc(),
    )
    app[API] = Api("TradeArena lobby API", "1.0.0")
    app.cleanup_ctx.extend([_bad_input, _postgres, _redis, _hasher])
    app.on_response_prepare.append(_nosniff)
    app[SIO] = create_sio(app)

    for module in ROUTE_MODULES:
        module.add_routes(app)
    log.info("lobby app created", extra={"matchmaking": orchestrator is not None})
    return app
