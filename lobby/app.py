"""The lobby's aiohttp application: `create_app(settings)`.

State lives on the app under typed keys (`lobby.state`): SETTINGS, SIGNER,
VERIFIER, HASHER, API, METRICS, SIO now; DB (asyncpg pool), REDIS and LIMITER
once the app starts (cleanup contexts open and close them). No module globals.

Feature modules plug in at one place, `FEATURE_MODULES` below: each module that
exists and defines `add_routes(app)` is called with the app after the core
routes; it registers REST operations with `app[API].add(app, Operation(...))`
(documented in OpenAPI, validated, authenticated) or plain aiohttp routes, and
Socket.IO handlers on `app[SIO]` (namespace `lobby.http.sockets.NAMESPACE`), and may
append to `app.cleanup_ctx` for its own background tasks.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from lobby.accounts import admin, notifications
from lobby.accounts import routes as accounts
from lobby.accounts.passwords import Argon2Params, Hasher
from lobby.http import ops
from lobby.http.api import Api
from lobby.http.middleware import error_middleware, metrics_middleware, rate_limit_middleware
from lobby.http.ratelimit import Limiter
from lobby.http.sockets import create_sio
from lobby.metrics import LobbyMetrics
from lobby.migrate import apply_migrations
from lobby.results import history
from lobby.settings import LobbySettings
from lobby.state import API, DB, HASHER, LIMITER, METRICS, REDIS, SETTINGS, SIGNER, SIO, VERIFIER

log = logging.getLogger("lobby.app")

# ---- Feature modules: `add_routes(app: web.Application) -> None`, called if present. ----
FEATURE_MODULES = (
    "lobby.matchmaking.queues",
    "lobby.matchmaking.planner",
    "lobby.matchmaking.formation",
    "lobby.results.worker",
    "lobby.ratings",
    "lobby.results.leaderboards",
    "lobby.http.webclient",
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
    # A bounded pool that waits for a free connection instead of failing: a burst of
    # logins or socket connects must queue, not error.
    pool = BlockingConnectionPool.from_url(
        app[SETTINGS].redis_url,
        max_connections=app[SETTINGS].redis_max_connections,
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


def _add_feature_routes(app: web.Application) -> list[str]:
    added = []
    for name in FEATURE_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        add = getattr(module, "add_routes", None)
        if callable(add):
            add(app)
            added.append(name)
    return added


def create_app(settings: LobbySettings) -> web.Application:
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware, rate_limit_middleware],
        client_max_size=settings.max_body_bytes,
    )
    signer = settings.signer()
    app[SETTINGS] = settings
    app[SIGNER] = signer
    app[VERIFIER] = signer.verifier()
    app[HASHER] = Hasher(
        Argon2Params(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        ),
        workers=settings.hash_workers,
    )
    app[METRICS] = LobbyMetrics()
    api = Api("TradeArena lobby API", "1.0.0")
    app[API] = api
    app.cleanup_ctx.extend([_postgres, _redis, _hasher])
    app[SIO] = create_sio(app)

    for module in (ops, accounts, notifications, history, admin):
        module.add_routes(app, api)
    features = _add_feature_routes(app)
    log.info("lobby app created", extra={"features": features})
    return app
