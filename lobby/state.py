"""Typed application state (aiohttp `AppKey`s): every key of the lobby app, in one place.

Set by `lobby.app.create_app` (settings, catalogue, signer, verifier, hasher,
API registry, metrics, Socket.IO server, and the orchestrator when the lobby
runs matches), by the route modules it includes (web assets, matchmaking
metrics) and by cleanup contexts once the app starts (PostgreSQL pool, Redis
client, limiter, queues, matchmaker). Handlers read them with
`request.app[DB]` etc.

At run time this module imports only the bottom of the lobby (settings, metrics):
the types of objects built in the groups above (hasher, API registry, limiter,
queues, matchmaker) are named for type checking only, so every group may import
`state` and none is imported back (`.importlinter`, no cycles).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import socketio
from aiohttp import web

from lobby.metrics import LobbyMetrics
from lobby.settings import LobbySettings
from tradearena import redisconn
from tradearena.badinput import BadInputLog
from tradearena.modes import Catalogue
from tradearena.tokens import Signer, Verifier

if TYPE_CHECKING:
    from lobby.accounts.passwords import Hasher
    from lobby.http.api import Api
    from lobby.http.assets import Asset
    from lobby.http.ratelimit import Limiter
    from lobby.matchmaking.formation import Matchmaker, MatchmakingMetrics
    from lobby.matchmaking.live import LiveBoard, SpectateMetrics
    from lobby.matchmaking.parties import Parties, PartyMetrics
    from lobby.matchmaking.private import PrivateMatches
    from lobby.matchmaking.private_routes import PrivateMetrics
    from lobby.matchmaking.queues import Queues
    from lobby.results.replay_routes import ReplayCache
    from tradearena.contracts.orchestration import Orchestrator

# ---- built by create_app ----
SETTINGS = web.AppKey("settings", LobbySettings)
CATALOGUE = web.AppKey("catalogue", Catalogue)
SIGNER = web.AppKey("signer", Signer)
VERIFIER = web.AppKey("verifier", Verifier)
HASHER: web.AppKey[Hasher] = web.AppKey("hasher")
API: web.AppKey[Api] = web.AppKey("api")
METRICS = web.AppKey("metrics", LobbyMetrics)
# python-socketio's AsyncServer (untyped): the `/lobby` namespace lives on it.
SIO = web.AppKey("sio", socketio.AsyncServer)
BAD_INPUT = web.AppKey("bad_input", BadInputLog)
# Where matches run; absent when this lobby only serves (admin match routes answer 503).
ORCHESTRATOR: web.AppKey[Orchestrator] = web.AppKey("orchestrator")

# ---- set by route modules when included ----
ASSETS: web.AppKey[dict[str, Asset]] = web.AppKey("web_assets")
VENDOR_ASSETS: web.AppKey[dict[str, Asset]] = web.AppKey("web_vendor_assets")
MATCHMAKING_METRICS: web.AppKey[MatchmakingMetrics] = web.AppKey("matchmaking_metrics")
PARTY_METRICS: web.AppKey[PartyMetrics] = web.AppKey("party_metrics")
PRIVATE_METRICS: web.AppKey[PrivateMetrics] = web.AppKey("private_metrics")
SPECTATE_METRICS: web.AppKey[SpectateMetrics] = web.AppKey("spectate_metrics")
LIVE_BOARD: web.AppKey[LiveBoard] = web.AppKey("live_board")  # the cached live list
# The candles API's fairness cap: the longest price delay of the catalogue (ms).
CANDLE_CAP_MS = web.AppKey("candle_cap_ms", int)
# Built replay documents (lobby.results.replay_routes).
REPLAY_CACHE: web.AppKey[ReplayCache] = web.AppKey("replay_cache")

# ---- opened by cleanup contexts at start-up ----
DB = web.AppKey("db", asyncpg.Pool)
REDIS: web.AppKey[redisconn.AnyRedis] = web.AppKey("redis")
LIMITER: web.AppKey[Limiter] = web.AppKey("limiter")
QUEUES: web.AppKey[Queues] = web.AppKey("queues")
PARTIES: web.AppKey[Parties] = web.AppKey("parties")
MATCHMAKER: web.AppKey[Matchmaker] = web.AppKey("matchmaker")  # only with an orchestrator
PRIVATE_MATCHES: web.AppKey[PrivateMatches] = web.AppKey("private_matches")
