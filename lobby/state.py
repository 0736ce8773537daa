"""Typed application state (aiohttp `AppKey`s): everything a handler needs is on the app.

Set by `lobby.app.create_app` (settings, signer, verifier, hasher, API registry,
metrics, Socket.IO server) and by its cleanup contexts (PostgreSQL pool, Redis
client, limiter). Feature modules read them with `request.app[DB]` etc.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import socketio
from aiohttp import web
from redis.asyncio import Redis

from lobby.accounts.passwords import Hasher
from lobby.http.ratelimit import Limiter
from lobby.settings import LobbySettings
from tradearena.tokens import Signer, Verifier

if TYPE_CHECKING:
    from lobby.http.api import Api
    from lobby.metrics import LobbyMetrics

SETTINGS = web.AppKey("settings", LobbySettings)
SIGNER = web.AppKey("signer", Signer)
VERIFIER = web.AppKey("verifier", Verifier)
HASHER = web.AppKey("hasher", Hasher)
DB = web.AppKey("db", asyncpg.Pool)
REDIS = web.AppKey("redis", Redis)
LIMITER = web.AppKey("limiter", Limiter)
API: web.AppKey[Api] = web.AppKey("api")
METRICS: web.AppKey[LobbyMetrics] = web.AppKey("metrics")
# python-socketio's AsyncServer (untyped): the `/lobby` namespace lives on it.
SIO = web.AppKey("sio", socketio.AsyncServer)
