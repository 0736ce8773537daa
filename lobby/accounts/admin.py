"""Admin endpoints: ban, unban, the audit log. Every admin action is audited.

Other admin features reuse `Operation(..., auth="admin")` (or `require_admin`)
and `record_audit(conn, actor_id, action, target_kind, target_id, payload)` in
the transaction of the action they record.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import asyncpg
from aiohttp import web

from lobby import keys as redis_keys
from lobby.accounts.routes import revoke_user_tokens
from lobby.accounts.usernames import canonical_prefix
from lobby.http.api import Operation, body_of, path_of, principal, query_of, reply
from lobby.http.problems import problem
from lobby.http.schemas import (
    AdminUser,
    AdminUserPage,
    AdminUserQuery,
    AuditEntry,
    AuditPage,
    AuditQuery,
    BanRequest,
    UnbanRequest,
    UserPath,
)
from lobby.http.sockets import disconnect_user, emit_to_user
from lobby.state import API, DB, REDIS, SETTINGS
from tradearena.tokens import LEEWAY_S

log = logging.getLogger("lobby.accounts.admin")


async def record_audit(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor_id: str,
    action: str,
    target_kind: str,
    target_id: str,
    payload: dict[str, Any] | None = None,
) -> int:
    audit_id: int = await conn.fetchval(
        "INSERT INTO admin_audit (actor_id, action, target_kind, target_id, payload)"
        " VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id",
        uuid.UUID(actor_id),
        action,
        target_kind,
        target_id,
        json.dumps(payload or {}, default=str),
    )
    log.info(
        "admin action",
        extra={"actor_id": actor_id, "action": action, "target": f"{target_kind}:{target_id}"},
    )
    return audit_id


def _target(request: web.Request) -> uuid.UUID:
    raw = path_of(request, UserPath).user_id
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise problem(404, "user_not_found", "no such user") from None


def _admin_user(row: asyncpg.Record) -> AdminUser:
    return AdminUser(
        id=str(row["id"]),
        username=row["username"],
        role=row["role"],
        created_at=row["created_at"],
        banned=row["banned_at"] is not None,
        banned_at=row["banned_at"],
        ban_reason=row["ban_reason"],
    )


async def ban(request: web.Request) -> web.Response:
    app = request.app
    actor = principal(request)
    target = _target(request)
    body = body_of(request, BanRequest)
    if str(target) == actor.user_id:
        raise problem(409, "cannot_ban_self", "an admin cannot ban their own account")
    async with app[DB].acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE users SET banned_at = COALESCE(banned_at, now()), ban_reason = $2,"
            " updated_at = now() WHERE id = $1"
            " RETURNING id, username, role, created_at, banned_at, ban_reason",
            target,
            body.reason,
        )
        if row is None:
            raise problem(404, "user_not_found", "no such user")
        revoked = await revoke_user_tokens(conn, target, "banned")
        await record_audit(
            conn,
            actor.user_id,
            "user.ban",
            "user",
            str(target),
            {"reason": body.reason, "revoked_refresh_tokens": revoked},
        )
    # Access tokens are refused as soon as this flag exists, until they would expire anyway.
    ttl = app[SETTINGS].access_ttl_s + LEEWAY_S + 5
    await app[REDIS].set(redis_keys.lobby_banned(str(target)), "1", ex=ttl)
    # Told on every replica (the room spans them with the Redis manager); closed here.
    await emit_to_user(app, str(target), "account_banned", {"reason": body.reason})
    await disconnect_user(app, str(target))
    return reply(_admin_user(row))


async def unban(request: web.Request) -> web.Response:
    app = request.app
    actor = principal(request)
    target = _target(request)
    body = body_of(request, UnbanRequest)
    async with app[DB].acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE users SET banned_at = NULL, ban_reason = NULL, updated_at = now()"
            " WHERE id = $1"
            " RETURNING id, username, role, created_at, banned_at, ban_reason",
            target,
        )
        if row is None:
            raise problem(404, "user_not_found", "no such user")
        await record_audit(
            conn, actor.user_id, "user.unban", "user", str(target), {"reason": body.reason}
        )
    await app[REDIS].delete(redis_keys.lobby_banned(str(target)))
    return reply(_admin_user(row))


async def list_users(request: web.Request) -> web.Response:
    """Find accounts by username prefix (case-insensitive) and ban state."""
    query = query_of(request, AdminUserQuery)
    prefix = None
    if query.username is not None:
        canonical = canonical_prefix(query.username)
        if canonical is None:  # no username starts with it
            return reply(AdminUserPage(items=[]))
        prefix = canonical.replace("_", "\\_") + "%"  # `.` and `-` are not LIKE wildcards
    rows = await request.app[DB].fetch(
        "SELECT id, username, role, created_at, banned_at, ban_reason FROM users"
        " WHERE ($1::text IS NULL OR username_canonical LIKE $1)"
        " AND ($2::boolean IS NULL OR (banned_at IS NOT NULL) = $2)"
        " ORDER BY username_canonical LIMIT $3",
        prefix,
        query.banned,
        query.limit,
    )
    return reply(AdminUserPage(items=[_admin_user(r) for r in rows]))


async def audit_log(request: web.Request) -> web.Response:
    query = query_of(request, AuditQuery)
    rows = await request.app[DB].fetch(
        "SELECT a.id, a.actor_id, u.username AS actor_username, a.action, a.target_kind,"
        " a.target_id, a.payload, a.created_at"
        " FROM admin_audit a JOIN users u ON u.id = a.actor_id"
        " WHERE ($1::bigint IS NULL OR a.id < $1) AND ($2::text IS NULL OR a.target_id = $2)"
        " ORDER BY a.id DESC LIMIT $3",
        query.before,
        query.target_id,
        query.limit + 1,
    )
    items = [
        AuditEntry(
            id=r["id"],
            actor_id=str(r["actor_id"]),
            actor_username=r["actor_username"],
            action=r["action"],
            target_kind=r["target_kind"],
            target_id=r["target_id"],
            payload=json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"],
            created_at=r["created_at"],
        )
        for r in rows[: query.limit]
    ]
    more = len(rows) > query.limit
    return reply(AuditPage(items=items, next_before=items[-1].id if more and items else None))


def add_routes(app: web.Application) -> None:
    api = app[API]
    base = "/api/v1/admin"
    api.add(
        app,
        Operation(
            "GET",
            base + "/users",
            list_users,
            "adminListUsers",
            "Find accounts by username prefix and ban state",
            "admin",
            responses={200: AdminUserPage},
            query=AdminUserQuery,
            auth="admin",
        ),
    )
    api.add(
        app,
        Operation(
            "POST",
            base + "/users/{user_id}/ban",
            ban,
            "banUser",
            "Ban a user: no login, no refresh, sessions revoked",
            "admin",
            responses={200: AdminUser},
            body=BanRequest,
            path_params=UserPath,
            auth="admin",
            errors=(404, 409),
        ),
    )
    api.add(
        app,
        Operation(
            "POST",
            base + "/users/{user_id}/unban",
            unban,
            "unbanUser",
            "Lift a ban",
            "admin",
            responses={200: AdminUser},
            body=UnbanRequest,
            path_params=UserPath,
            auth="admin",
            errors=(404,),
        ),
    )
    api.add(
        app,
        Operation(
            "GET",
            base + "/audit",
            audit_log,
            "adminAudit",
            "The audit log of admin actions, newest first",
            "admin",
            responses={200: AuditPage},
            query=AuditQuery,
            auth="admin",
        ),
    )
