"""Persistent notifications: stored in PostgreSQL (read later by offline players)
and pushed live to the player's `/lobby` room as the `notification` event.

    await notify(app, user_id, "match_found", {"match_id": ...})

Inside your own transaction, store with `store_notification(conn, ...)` and
call `emit_notification(app, note)` after the commit.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
from aiohttp import web

from lobby.http.api import Operation, body_of, principal, query_of, reply
from lobby.http.schemas import (
    MarkedRead,
    MarkRead,
    Notification,
    NotificationPage,
    NotificationQuery,
)
from lobby.http.sockets import emit_to_user
from lobby.state import API, DB, METRICS

EVENT = "notification"


def _note(row: asyncpg.Record) -> Notification:
    payload = row["payload"]
    return Notification(
        id=row["id"],
        kind=row["kind"],
        payload=json.loads(payload) if isinstance(payload, str) else payload,
        created_at=row["created_at"],
        read_at=row["read_at"],
    )


async def store_notification(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, kind: str, payload: dict[str, Any]
) -> Notification:
    row = await conn.fetchrow(
        "INSERT INTO notifications (user_id, kind, payload) VALUES ($1, $2, $3::jsonb)"
        " RETURNING id, kind, payload, created_at, read_at",
        uuid.UUID(user_id),
        kind,
        json.dumps(payload, default=str),
    )
    return _note(row)


async def emit_notification(app: web.Application, user_id: str, note: Notification) -> None:
    await emit_to_user(app, user_id, EVENT, note.model_dump(mode="json"))


async def notify(
    app: web.Application, user_id: str, kind: str, payload: dict[str, Any]
) -> Notification:
    """Store a notification and push it to the player's live connections."""
    note = await store_notification(app[DB], user_id, kind, payload)
    app[METRICS].notifications.labels(kind).inc()
    await emit_notification(app, user_id, note)
    return note


async def list_notifications(request: web.Request) -> web.Response:
    query = query_of(request, NotificationQuery)
    user_id = uuid.UUID(principal(request).user_id)
    pool = request.app[DB]
    rows = await pool.fetch(
        "SELECT id, kind, payload, created_at, read_at FROM notifications"
        " WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2)"
        " AND (NOT $3 OR read_at IS NULL)"
        " ORDER BY id DESC LIMIT $4",
        user_id,
        query.before,
        query.unread_only,
        query.limit + 1,
    )
    unread = await pool.fetchval(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", user_id
    )
    items = [_note(r) for r in rows[: query.limit]]
    more = len(rows) > query.limit
    return reply(
        NotificationPage(
            items=items, unread=int(unread), next_before=items[-1].id if more and items else None
        )
    )


async def mark_read(request: web.Request) -> web.Response:
    body = body_of(request, MarkRead)
    user_id = uuid.UUID(principal(request).user_id)
    status = await request.app[DB].execute(
        "UPDATE notifications SET read_at = now()"
        " WHERE user_id = $1 AND read_at IS NULL AND ($2 OR id = ANY($3::bigint[]))",
        user_id,
        body.all,
        body.ids,
    )
    return reply(MarkedRead(updated=int(status.split()[-1])))


def add_routes(app: web.Application) -> None:
    api = app[API]
    api.add(
        app,
        Operation(
            "GET",
            "/api/v1/notifications",
            list_notifications,
            "listNotifications",
            "The caller's notifications, newest first",
            "notifications",
            responses={200: NotificationPage},
            query=NotificationQuery,
            auth="user",
        ),
    )
    api.add(
        app,
        Operation(
            "POST",
            "/api/v1/notifications/read",
            mark_read,
            "markNotificationsRead",
            "Mark notifications read (some ids, or all)",
            "notifications",
            responses={200: MarkedRead},
            body=MarkRead,
            auth="user",
        ),
    )
