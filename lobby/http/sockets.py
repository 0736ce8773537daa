"""The Socket.IO `/lobby` namespace on the lobby's aiohttp app.

A client connects with its access token in the auth payload
(`io("/lobby", {auth: {token}})`); a refused connection's
`connect_error` carries `{message, data: {code}}`. Each connection joins the room `user:<id>`, so anything
addressed to a player reaches all their tabs and devices:
`await emit_to_user(app, user_id, "queue_status", {...})`.

Feature modules add event handlers on the same namespace:

    sio = app[SIO]
    @sio.on("queue_join", namespace=NAMESPACE)
    async def queue_join(sid, data): user_id = await socket_user(sio, sid) ...

With `TRADEARENA_SOCKETIO_REDIS=true` the server uses python-socketio's Redis
manager, so several lobby replicas (and write-only emitters such as the
results worker) reach every connected client.

The server is a `tradearena.sockets.GuardedServer`: a client event named like a
transport event (`connect`, `disconnect`, ...) reaches no handler; it is counted
(`lobby_socketio_event_refusals_total{code}`) and acknowledged with
`{ok: false, code: "reserved_event", message}`.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from aiohttp import web

from lobby import keys as redis_keys
from lobby.state import METRICS, REDIS, SETTINGS, SIO, VERIFIER
from tradearena.badinput import socketio_loggers
from tradearena.contracts.keys import SOCKETIO_CHANNEL
from tradearena.socketio_redis import redis_manager
from tradearena.sockets import GuardedServer
from tradearena.tokens import TokenError

NAMESPACE = "/lobby"
log = logging.getLogger("lobby.http.sockets")


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def _refused(code: str, message: str) -> Exception:
    """The client's `connect_error` gets `{message, data: {code}}`."""
    error: Exception = socketio.exceptions.ConnectionRefusedError(message, {"code": code})
    return error


def create_sio(app: web.Application) -> Any:
    settings = app[SETTINGS]
    manager = None
    if settings.socketio_redis:
        manager = redis_manager(settings.redis_url, SOCKETIO_CHANNEL)
    origins: Any = settings.cors_origins or None
    metrics = app[METRICS]
    sio_log, eio_log = socketio_loggers("lobby")  # watched by BAD_INPUT (lobby.app)
    sio = GuardedServer(
        on_refused=lambda code: metrics.socket_event_refusals.labels(code).inc(),
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=origins,
        logger=sio_log,
        engineio_logger=eio_log,
    )
    sio.attach(app)

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise _refused("auth_required", "connect with auth {token}")
        try:
            claims = app[VERIFIER].verify_access(token)
        except TokenError as exc:
            raise _refused(exc.code, exc.message) from None
        user_id = str(claims["sub"])
        if await app[REDIS].exists(redis_keys.lobby_banned(user_id)):
            raise _refused("account_banned", "this account is banned")
        await sio.save_session(
            sid, {"user_id": user_id, "role": claims.get("role", "player")}, namespace=NAMESPACE
        )
        await sio.enter_room(sid, user_room(user_id), namespace=NAMESPACE)
        app[METRICS].active_sockets.inc()
        log.info("socket connected", extra={"user_id": user_id})

    async def disconnect(sid: str, reason: Any = None) -> None:
        app[METRICS].active_sockets.dec()

    sio.on("connect", connect, namespace=NAMESPACE)
    sio.on("disconnect", disconnect, namespace=NAMESPACE)

    return sio


async def socket_user(sio: Any, sid: str) -> str:
    """The user id of a connected `/lobby` socket."""
    session = await sio.get_session(sid, namespace=NAMESPACE)
    return str(session["user_id"])


async def emit_to_user(app: web.Application, user_id: str, event: str, data: Any) -> None:
    """Send an event to every `/lobby` connection of one player (not stored)."""
    await app[SIO].emit(event, data, room=user_room(user_id), namespace=NAMESPACE)


async def disconnect_user(app: web.Application, user_id: str) -> None:
    """Close every `/lobby` connection of a player on this replica (after a ban)."""
    sio = app[SIO]
    sids = [sid for sid, _ in sio.manager.get_participants(NAMESPACE, user_room(user_id))]
    for sid in sids:
        await sio.disconnect(sid, namespace=NAMESPACE)
