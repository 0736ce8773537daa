"""Accounts: register, login, refresh, logout, me, player settings."""

from __future__ import annotations

import hmac
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from lobby import keys as redis_keys
from lobby.accounts.passwords import password_problems
from lobby.accounts.refresh_rules import (
    StoredToken,
    Verdict,
    judge,
    new_refresh_token,
    successor_expiry,
    successor_key,
    successor_token,
    token_digest,
    well_formed,
)
from lobby.accounts.usernames import canonical_username
from lobby.http.api import Operation, body_of, principal, reply
from lobby.http.middleware import client_ip
from lobby.http.problems import problem, too_many
from lobby.http.ratelimit import FailureCount, login_decision
from lobby.http.schemas import (
    LoginRequest,
    LogoutRequest,
    Me,
    PlayerSettings,
    RefreshRequest,
    RegisterRequest,
    SettingsPatch,
    TokenPair,
    User,
)
from lobby.state import API, DB, HASHER, LIMITER, METRICS, REDIS, SETTINGS, SIGNER

log = logging.getLogger("lobby.accounts.routes")


def _user(row: asyncpg.Record, id_column: str = "id") -> User:
    return User(
        id=str(row[id_column]),
        username=row["username"],
        role=row["role"],
        created_at=row["created_at"],
        banned=row["banned_at"] is not None,
    )


async def issue_tokens(
    conn: asyncpg.Connection,
    app: web.Application,
    user: User,
    family: tuple[uuid.UUID, datetime] | None = None,
    parent_id: uuid.UUID | None = None,
    token: str | None = None,
) -> TokenPair:
    """A new access token and refresh token; `family=None` starts a family (a login).
    A rotation passes the successor `token` (derived from the spent one)."""
    settings = app[SETTINGS]
    now = datetime.now(UTC)
    family_id, started = family or (uuid.uuid4(), now)
    max_age = timedelta(seconds=settings.refresh_family_max_age_s)
    expires = successor_expiry(now, timedelta(seconds=settings.refresh_ttl_s), started, max_age)
    token = token or new_refresh_token()
    await conn.execute(
        "INSERT INTO refresh_tokens (family_id, user_id, token_hash, parent_id, family_started,"
        " created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        family_id,
        uuid.UUID(user.id),
        token_digest(token),
        parent_id,
        started,
        now,
        expires,
    )
    access = app[SIGNER].access_token(user.id, user.role, ttl_s=settings.access_ttl_s)
    return TokenPair(
        access_token=access,
        expires_in=settings.access_ttl_s,
        refresh_token=token,
        refresh_expires_in=int((expires - now).total_seconds()),
        user=user,
    )


async def revoke_user_tokens(conn: asyncpg.Connection, user_id: uuid.UUID, reason: str) -> int:
    status = await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = $2"
        " WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
        reason,
    )
    return int(status.split()[-1])


_INVALID_USERNAME = (
    "no account has this name: a username is 3 to 32 ASCII letters, digits, '_', '.' or '-'"
)


def _canonical_or_refuse(name: str) -> str:
    canonical = canonical_username(name)
    if canonical is None:
        raise problem(422, "invalid_username", _INVALID_USERNAME)
    return canonical


async def register(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    body = body_of(request, RegisterRequest)
    canonical = _canonical_or_refuse(body.username)
    decision = await app[LIMITER].check(
        "register", client_ip(request), settings.register_limit_ip, settings.register_window_s
    )
    if not decision.allowed:
        app[METRICS].rate_limited.labels("register").inc()
        raise too_many(
            "register_throttled", "too many accounts created from here", decision.retry_after_s
        )
    issues = password_problems(body.password, body.username)
    if issues:
        raise problem(
            422,
            "weak_password",
            "the password is refused: " + "; ".join(issues),
            errors=[{"loc": ["password"], "msg": i, "type": "weak_password"} for i in issues],
        )
    password_hash = await app[HASHER].hash(body.password)
    async with app[DB].acquire() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                "INSERT INTO users (username, username_canonical, password_hash)"
                " VALUES ($1, $2, $3) RETURNING id, username, role, created_at, banned_at",
                body.username,
                canonical,
                password_hash,
            )
        except asyncpg.UniqueViolationError:
            raise problem(409, "username_taken", "this username is taken") from None
        await conn.execute(
            "INSERT INTO player_settings (user_id, display_name) VALUES ($1, $2)",
            row["id"],
            body.display_name or body.username,
        )
        pair = await issue_tokens(conn, app, _user(row))
    app[METRICS].registrations.inc()
    log.info("account created", extra={"user_id": pair.user.id})
    return reply(pair, 201)


async def login(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    metrics = app[METRICS]
    limiter = app[LIMITER]
    body = body_of(request, LoginRequest)
    # Before any throttle key or lookup: a name registration refuses has no account.
    name = canonical_username(body.username)
    if name is None:
        metrics.logins.labels("invalid_username").inc()
        raise problem(422, "invalid_username", _INVALID_USERNAME)
    ip = client_ip(request)
    keys = {
        "account": (
            redis_keys.lobby_login_failures("account", name),
            settings.login_max_failures_account,
        ),
        "account_ip": (
            redis_keys.lobby_login_failures("account_ip", f"{name}|{ip}"),
            settings.login_max_failures_account_ip,
        ),
        "ip": (redis_keys.lobby_login_failures("ip", ip), settings.login_max_failures_ip),
    }
    peeked = await limiter.peek(*(key for key, _ in keys.values()))
    decision = login_decision(
        *(
            FailureCount(n, ttl, cap)
            for (n, ttl), (_, cap) in zip(peeked, keys.values(), strict=True)
        )
    )
    if not decision.allowed:
        metrics.logins.labels("throttled").inc()
        raise too_many("login_throttled", "too many failed logins; wait", decision.retry_after_s)
    row = await app[DB].fetchrow(
        "SELECT id, username, password_hash, role, created_at, banned_at FROM users"
        " WHERE username_canonical = $1",
        name,
    )
    ok, needs_rehash = await app[HASHER].verify(
        row["password_hash"] if row is not None else None, body.password
    )
    if not ok or row is None:
        for key, _ in keys.values():
            await limiter.hit(key, settings.login_window_s)
        metrics.logins.labels("failed").inc()
        log.info("login failed", extra={"ip": ip})
        raise problem(401, "invalid_credentials", "wrong username or password")
    if row["banned_at"] is not None:
        metrics.logins.labels("banned").inc()
        raise problem(403, "account_banned", "this account is banned")
    await app[REDIS].delete(keys["account_ip"][0])
    new_hash = await app[HASHER].hash(body.password) if needs_rehash else None
    async with app[DB].acquire() as conn, conn.transaction():
        if new_hash is not None:
            await conn.execute(
                "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
                row["id"],
                new_hash,
            )
        pair = await issue_tokens(conn, app, _user(row))
    metrics.logins.labels("ok").inc()
    log.info("login", extra={"user_id": pair.user.id})
    return reply(pair)


_REFRESH_SQL = """
SELECT rt.id, rt.family_id, rt.user_id, rt.family_started, rt.expires_at, rt.used_at,
       rt.revoked_at, u.username, u.role, u.created_at, u.banned_at
FROM refresh_tokens rt JOIN users u ON u.id = rt.user_id
WHERE rt.token_hash = $1
FOR UPDATE OF rt
"""


async def refresh(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    body = body_of(request, RefreshRequest)
    now = datetime.now(UTC)
    pair: TokenPair | None = None
    verdict = Verdict.UNKNOWN
    banned = replayed = False
    if well_formed(body.refresh_token):
        successor = successor_token(_successor_key(app), body.refresh_token)
        grace = timedelta(seconds=settings.refresh_reuse_grace_s)
        async with app[DB].acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_REFRESH_SQL, token_digest(body.refresh_token))
            stored = (
                None
                if row is None
                else StoredToken(
                    family_id=str(row["family_id"]),
                    user_id=str(row["user_id"]),
                    family_started=row["family_started"],
                    expires_at=row["expires_at"],
                    used_at=row["used_at"],
                    revoked_at=row["revoked_at"],
                )
            )
            verdict = judge(
                stored, now, timedelta(seconds=settings.refresh_family_max_age_s), grace
            )
            if row is not None and verdict is Verdict.GRACE_REPLAY:
                pair = await _replay(conn, app, row, successor)
                replayed = pair is not None
                verdict = Verdict.GRACE_REPLAY if replayed else Verdict.REUSED
            if row is not None and verdict is Verdict.REUSED:
                await _revoke_family(conn, row["family_id"], "reuse_detected")
                log.warning(
                    "refresh token reuse: family revoked",
                    extra={"user_id": str(row["user_id"]), "family_id": str(row["family_id"])},
                )
            elif row is not None and verdict is Verdict.ROTATE and row["banned_at"] is not None:
                await _revoke_family(conn, row["family_id"], "banned")
                banned = True
            elif row is not None and verdict is Verdict.ROTATE:
                await conn.execute(
                    "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1", row["id"], now
                )
                user = _user(row, "user_id")
                family = (row["family_id"], row["family_started"])
                pair = await issue_tokens(conn, app, user, family, row["id"], successor)
    outcome = "banned" if banned else ("ok" if pair is not None else verdict.value)
    if replayed:
        outcome = Verdict.GRACE_REPLAY.value
    app[METRICS].refreshes.labels(outcome).inc()
    if banned:
        raise problem(403, "account_banned", "this account is banned")
    if pair is None:
        messages = {
            Verdict.UNKNOWN: "unknown refresh token",
            Verdict.REVOKED: "this refresh token was revoked; log in again",
            Verdict.REUSED: "this refresh token was already used; the session is revoked",
            Verdict.EXPIRED: "the refresh token has expired; log in again",
            Verdict.FAMILY_EXPIRED: "the session is too old; log in again",
        }
        raise problem(401, verdict.value, messages.get(verdict, "refused"))
    return reply(pair)


def _successor_key(app: web.Application) -> bytes:
    raw = app[SIGNER].private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return successor_key(raw)


async def _replay(
    conn: asyncpg.Connection, app: web.Application, row: asyncpg.Record, successor: str
) -> TokenPair | None:
    """The pair a token spent moments ago got, again: the same successor refresh token
    (if still unspent, unrevoked and the one stored) and a fresh access token."""
    child = await conn.fetchrow(
        "SELECT token_hash, expires_at, used_at, revoked_at FROM refresh_tokens"
        " WHERE family_id = $1 AND parent_id = $2 FOR UPDATE",
        row["family_id"],
        row["id"],
    )
    if (
        child is None
        or child["used_at"] is not None
        or child["revoked_at"] is not None
        or row["banned_at"] is not None
        or not hmac.compare_digest(bytes(child["token_hash"]), token_digest(successor))
    ):
        return None
    settings = app[SETTINGS]
    user = _user(row, "user_id")
    access = app[SIGNER].access_token(user.id, user.role, ttl_s=settings.access_ttl_s)
    left = child["expires_at"] - datetime.now(UTC)
    return TokenPair(
        access_token=access,
        expires_in=settings.access_ttl_s,
        refresh_token=successor,
        refresh_expires_in=max(0, int(left.total_seconds())),
        user=user,
    )


async def _revoke_family(conn: asyncpg.Connection, family_id: uuid.UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = $2"
        " WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
        reason,
    )


async def logout(request: web.Request) -> web.Response:
    """Revokes the token's family (this session) or, with `everywhere`, every session."""
    body = body_of(request, LogoutRequest)
    if well_formed(body.refresh_token):
        async with request.app[DB].acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1",
                token_digest(body.refresh_token),
            )
            if row is not None and body.everywhere:
                await revoke_user_tokens(conn, row["user_id"], "logout_everywhere")
            elif row is not None:
                await _revoke_family(conn, row["family_id"], "logout")
    return web.Response(status=204)


_ME_SQL = """
SELECT u.id, u.username, u.role, u.created_at, u.banned_at,
       s.display_name, s.preferred_mode, s.preferred_format, s.sound, s.notifications,
       s.updated_at
FROM users u JOIN player_settings s ON s.user_id = u.id
WHERE u.id = $1
"""


def _settings(row: asyncpg.Record) -> PlayerSettings:
    return PlayerSettings(
        display_name=row["display_name"],
        preferred_mode=row["preferred_mode"],
        preferred_format=row["preferred_format"],
        sound=row["sound"],
        notifications=row["notifications"],
        updated_at=row["updated_at"],
    )


async def _me_row(request: web.Request) -> asyncpg.Record:
    row = await request.app[DB].fetchrow(_ME_SQL, uuid.UUID(principal(request).user_id))
    if row is None:
        raise problem(404, "user_not_found", "this account no longer exists")
    return row


async def me(request: web.Request) -> web.Response:
    row = await _me_row(request)
    user = _user(row)
    return reply(Me(**user.model_dump(), settings=_settings(row)))


async def get_settings(request: web.Request) -> web.Response:
    return reply(_settings(await _me_row(request)))


async def patch_settings(request: web.Request) -> web.Response:
    patch = body_of(request, SettingsPatch)
    values: dict[str, Any] = patch.model_dump()
    row = await request.app[DB].fetchrow(
        """UPDATE player_settings SET
             display_name = COALESCE($2, display_name),
             preferred_mode = COALESCE($3, preferred_mode),
             preferred_format = COALESCE($4, preferred_format),
             sound = COALESCE($5, sound),
             notifications = COALESCE($6, notifications),
             updated_at = now()
           WHERE user_id = $1
           RETURNING display_name, preferred_mode, preferred_format, sound, notifications,
                     updated_at""",
        uuid.UUID(principal(request).user_id),
        values["display_name"],
        values["preferred_mode"],
        values["preferred_format"],
        values["sound"],
        values["notifications"],
    )
    if row is None:
        raise problem(404, "user_not_found", "this account no longer exists")
    return reply(_settings(row))


def add_routes(app: web.Application) -> None:
    api = app[API]
    auth = "/api/v1/auth"
    api.add(
        app,
        Operation(
            "POST",
            f"{auth}/register",
            register,
            "register",
            "Create an account; returns tokens",
            "auth",
            responses={201: TokenPair},
            body=RegisterRequest,
            errors=(409, 503),
        ),
    )
    api.add(
        app,
        Operation(
            "POST",
            f"{auth}/login",
            login,
            "login",
            "Log in with username and password",
            "auth",
            responses={200: TokenPair},
            body=LoginRequest,
            errors=(401, 403, 503),
        ),
    )
    api.add(
        app,
        Operation(
            "POST",
            f"{auth}/refresh",
            refresh,
            "refresh",
            "Trade a refresh token for new tokens (rotation)",
            "auth",
            responses={200: TokenPair},
            body=RefreshRequest,
            errors=(401, 403),
            description="A refresh token works once. Presented again within a few "
            "seconds of its use (two tabs racing), it gets the same successor; later, "
            "presenting a spent token revokes its whole family (`refresh_token_reused`).",
        ),
    )
    api.add(
        app,
        Operation(
            "POST",
            f"{auth}/logout",
            logout,
            "logout",
            "Revoke this session (or every session)",
            "auth",
            responses={204: None},
            body=LogoutRequest,
        ),
    )
    api.add(
        app,
        Operation(
            "GET",
            "/api/v1/me",
            me,
            "getMe",
            "The caller's account",
            "accounts",
            responses={200: Me},
            auth="user",
            errors=(404,),
        ),
    )
    api.add(
        app,
        Operation(
            "GET",
            "/api/v1/me/settings",
            get_settings,
            "getSettings",
            "The caller's player settings",
            "accounts",
            responses={200: PlayerSettings},
            auth="user",
            errors=(404,),
        ),
    )
    api.add(
        app,
        Operation(
            "PATCH",
            "/api/v1/me/settings",
            patch_settings,
            "patchSettings",
            "Change some player settings",
            "accounts",
            responses={200: PlayerSettings},
            body=SettingsPatch,
            auth="user",
            errors=(404,),
        ),
    )
