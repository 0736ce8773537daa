"""Private matches by invite code: REST handlers, the countdown task, metrics.

    POST   /api/v1/private-matches               open a room {mode, format, size, invite}:
                                                 201 {code, link, expires_at, ...}; the
                                                 invitees get `private_invite`
    GET    /api/v1/private-matches/{code}        the room: who joined, state, times
    POST   /api/v1/private-matches/{code}/join   take a seat (rate-limited)
    POST   /api/v1/private-matches/{code}/leave  give it back (the host cancels)
    POST   /api/v1/private-matches/{code}/start  the host starts it (>= the mode's min): 202
    DELETE /api/v1/private-matches/{code}        the host cancels

Every change is pushed to the room's players as the `/lobby` event `private_match`
(the same body as the GET). Starting records the match as `private` in
`match_options` (unrated) and then forms it through `lobby.matchmaking.formation`
like a queued match (`match_found`, `match_ready` with the tokens). Every replica
with an orchestrator also looks at the rooms whose countdown or expiry is due
(`ta:{q}:private-due`); the start and expiry scripts make sure only one acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, Field, StringConstraints

from lobby import match_options
from lobby.accounts.notifications import notify
from lobby.http.api import API_PREFIX, Operation, body_of, path_of, principal, reply
from lobby.http.problems import ProblemError, problem, too_many
from lobby.http.schemas import Body, Username, _enum, format_names, mode_names
from lobby.http.sockets import emit_to_user
from lobby.match_options import MatchKind
from lobby.matchmaking import private_rules as rules
from lobby.matchmaking.formation import FormationOutcome
from lobby.matchmaking.private import PrivateMatches
from lobby.matchmaking.queues import now_ms
from lobby.matchmaking.routes import release_if_over
from lobby.state import (
    API,
    CATALOGUE,
    DB,
    LIMITER,
    MATCHMAKER,
    METRICS,
    ORCHESTRATOR,
    PRIVATE_MATCHES,
    PRIVATE_METRICS,
    REDIS,
    SETTINGS,
)

log = logging.getLogger("lobby.private")
BASE = API_PREFIX + "/private-matches"
EVENT = "private_match"
INVITE_KIND = "private_invite"


class PrivateCreateRequest(Body):
    mode: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        json_schema_extra=_enum(mode_names())
    )
    format: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        json_schema_extra=_enum([f for f in format_names() if f != "auto"])
    )
    size: int | None = Field(default=None, ge=1, le=10_000, description="default: recommended")
    invite: list[Username] = Field(default_factory=list, max_length=100)


class PrivateCodePath(Body):
    code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,24}$")]


class PrivateMember(BaseModel):
    user_id: str
    username: str


class PrivateMatchReply(BaseModel):
    code: str
    link: str = Field(description="the web client's link, `#/private/<code>`")
    match_id: str
    host: PrivateMember
    mode: str
    format: str
    size: int
    min: int
    state: Literal["open", "starting", "started", "cancelled", "expired"]
    joined: list[PrivateMember]
    invited: list[PrivateMember]
    created_at: int = Field(description="ms since the epoch")
    start_at: int = Field(description="the countdown: starts by itself then with `min` joined")
    expires_at: int = Field(description="closed then if not started")


class PrivateMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "lobby_private_matches_total",
            "Private matches by event (created, joined, left, started, cancelled, expired, "
            "ready, failed)",
            ["event"],
            registry=registry,
        )
        self.refusals = Counter(
            "lobby_private_refusals_total",
            "Private match requests refused, by code",
            ["code"],
            registry=registry,
        )


def _reply(room: rules.Room) -> PrivateMatchReply:
    return PrivateMatchReply.model_validate({**room.to_json(), "link": rules.link(room.code)})


def _refuse(app: web.Application, err: rules.PrivateRuleError) -> ProblemError:
    app[PRIVATE_METRICS].refusals.labels(err.code).inc()
    return problem(err.status, err.code, err.message, **err.extra)


async def _push(app: web.Application, room: rules.Room) -> None:
    """Every player of the room sees the change (best effort; the REST answer stands)."""
    body = _reply(room).model_dump(mode="json")
    for m in room.joined:
        with contextlib.suppress(Exception):
            await emit_to_user(app, m.user_id, EVENT, body)


async def _limit(app: web.Application, bucket: str, user_id: str, limit: int) -> None:
    settings = app[SETTINGS]
    decision = await app[LIMITER].check(
        bucket, f"user:{user_id}", limit, settings.private_rate_window_s
    )
    if not decision.allowed:
        app[METRICS].rate_limited.labels(bucket).inc()
        app[PRIVATE_METRICS].refusals.labels("rate_limited").inc()
        raise too_many(
            "rate_limited", f"too many {bucket} requests; slow down", decision.retry_after_s
        )


async def _member(app: web.Application, user_id: str) -> rules.Member:
    name = await app[DB].fetchval("SELECT username FROM users WHERE id = $1", uuid.UUID(user_id))
    if name is None:
        raise problem(401, "unknown_user", "no such user")
    return rules.Member(user_id, str(name))


async def _room(app: web.Application, code_text: str) -> rules.Room:
    code = rules.normalise_code(code_text)
    room = await app[PRIVATE_MATCHES].get(code) if code else None
    if room is None:
        raise _refuse(app, rules.PrivateRuleError(404, "private_not_found", "no such code"))
    if room.state == rules.OPEN and now_ms() >= room.expires_at_ms:
        room = await _expire(app, room.code) or room
    return room


async def _expire(app: web.Application, code: str) -> rules.Room | None:
    try:
        room = await app[PRIVATE_MATCHES].close(code, "expired")
    except rules.PrivateRuleError:
        return None  # not due, or someone else closed or started it
    app[PRIVATE_METRICS].events.labels("expired").inc()
    await _push(app, room)
    return room


async def create(request: web.Request) -> web.Response:
    app = request.app
    body = body_of(request, PrivateCreateRequest)
    user_id = principal(request).user_id
    await _limit(app, "private_create", user_id, app[SETTINGS].private_create_limit)
    host = await _member(app, user_id)
    await release_if_over(app, user_id)  # a finished match's assignment is not a seat
    try:
        spec = rules.validate(
            app[CATALOGUE], body.mode, body.format, body.size, body.invite, host.username
        )
    except rules.PrivateRuleError as err:
        raise _refuse(app, err) from None
    rows = await app[DB].fetch(
        "SELECT id::text AS id, username FROM users"
        " WHERE lower(username) = ANY($1::text[]) AND banned_at IS NULL",
        list(spec.invite),
    )
    found = {r["username"].lower(): rules.Member(r["id"], r["username"]) for r in rows}
    unknown = [name for name in spec.invite if name not in found]
    if unknown:
        refusal = rules.PrivateRuleError(
            422, "unknown_player", f"no such player: {', '.join(unknown)}", {"usernames": unknown}
        )
        raise _refuse(app, refusal)
    invited = [found[name] for name in spec.invite]
    try:
        room = await app[PRIVATE_MATCHES].create(spec, host, invited)
    except rules.PrivateRuleError as err:
        raise _refuse(app, err) from None
    app[PRIVATE_METRICS].events.labels("created").inc()
    note = {
        "code": room.code,
        "link": rules.link(room.code),
        "host": host.username,
        "mode": room.mode,
        "format": room.format,
        "size": room.size,
        "expires_at": room.expires_at_ms,
    }
    for m in invited:
        try:
            await notify(app, m.user_id, INVITE_KIND, note)
        except Exception:  # one invitee's notification never blocks the others
            log.exception("invite notification failed", extra={"user_id": m.user_id})
    return reply(_reply(room), status=201)


async def get(request: web.Request) -> web.Response:
    return reply(_reply(await _room(request.app, path_of(request, PrivateCodePath).code)))


async def join(request: web.Request) -> web.Response:
    app = request.app
    user_id = principal(request).user_id
    await _limit(app, "private_join", user_id, app[SETTINGS].private_join_limit)
    room = await _room(app, path_of(request, PrivateCodePath).code)
    await release_if_over(app, user_id)
    try:
        rules.check_join(room, user_id, now_ms())
        room, took = await app[PRIVATE_MATCHES].join(room.code, await _member(app, user_id))
    except rules.PrivateRuleError as err:
        raise _refuse(app, err) from None
    if took:
        app[PRIVATE_METRICS].events.labels("joined").inc()
        await _push(app, room)
    return reply(_reply(room))


async def leave(request: web.Request) -> web.Response:
    app = request.app
    user_id = principal(request).user_id
    room = await _room(app, path_of(request, PrivateCodePath).code)
    if user_id == room.host.user_id:
        return await _cancel(app, room, user_id)
    try:
        left = await app[PRIVATE_MATCHES].leave(room.code, user_id)
    except rules.PrivateRuleError as err:
        raise _refuse(app, err) from None
    app[PRIVATE_METRICS].events.labels("left").inc()
    await _push(app, left)
    with contextlib.suppress(Exception):
        await emit_to_user(app, user_id, EVENT, _reply(left).model_dump(mode="json"))
    return reply(_reply(left))


async def cancel(request: web.Request) -> web.Response:
    app = request.app
    room = await _room(app, path_of(request, PrivateCodePath).code)
    return await _cancel(app, room, principal(request).user_id)


async def _cancel(app: web.Application, room: rules.Room, user_id: str) -> web.Response:
    try:
        rules.check_cancel(room, user_id, now_ms())
        closed = await app[PRIVATE_MATCHES].close(room.code, "cancelled")
    except rules.PrivateRuleError as err:
        raise _refuse(app, err) from None
    app[PRIVATE_METRICS].events.labels("cancelled").inc()
    await _push(app, closed)
    return reply(_reply(closed))


async def start(request: web.Request) -> web.Response:
    app = request.app
    room = await _room(app, path_of(request, PrivateCodePath).code)
    try:
        rules.check_start(room, principal(request).user_id, now_ms())
    except rules.PrivateRuleError as err:
        raise _refuse(app, err) from None
    return reply(_reply(await _start(app, room)), status=202)


async def _start(app: web.Application, room: rules.Room) -> rules.Room:
    """Claim the room (exactly one caller wins), record it as private and unrated, then
    form it like a queued match. Raises `PrivateRuleError` (as a problem) if it lost."""
    matchmaker = app.get(MATCHMAKER)
    if matchmaker is None:
        raise problem(503, "matchmaking_unavailable", "this lobby does not run matches")
    private = app[PRIVATE_MATCHES]
    for _ in range(3):  # someone joined or left between the read and the claim: read again
        try:
            claim = await private.claim_start(room)
            break
        except rules.PrivateRuleError as err:
            fresh = await private.get(room.code) if err.code == "changed" else None
            if fresh is None:
                raise _refuse(app, err) from None
            room = fresh
    else:
        raise _refuse(app, rules.PrivateRuleError(409, "private_busy", "the room keeps changing"))
    starting = await private.get(room.code) or room
    try:
        # Before the server is asked for: the results worker must see it unrated.
        await match_options.record(
            app[DB],
            claim.match_id,
            MatchKind.PRIVATE,
            room.host.user_id,
            [m.user_id for m in room.invited],
        )
    except Exception:
        await app[PRIVATE_MATCHES].mark(room.code, "starting", "cancelled")
        await matchmaker.queues.requeue(claim.match_id)  # releases the players' seats
        raise
    app[PRIVATE_METRICS].events.labels("started").inc()
    task = matchmaker.form_claimed(claim)
    private.tasks.add(asyncio.create_task(_formed(app, starting, task)))
    await _push(app, starting)
    return starting


async def _formed(
    app: web.Application, room: rules.Room, task: asyncio.Task[FormationOutcome]
) -> None:
    outcome = await task
    ready = outcome.state == "ready"
    app[PRIVATE_METRICS].events.labels("ready" if ready else "failed").inc()
    await app[PRIVATE_MATCHES].mark(room.code, "starting", "started" if ready else "cancelled")
    after = await app[PRIVATE_MATCHES].get(room.code)
    if after is not None:
        await _push(app, after)


async def tick(app: web.Application) -> int:
    """Look at every room whose countdown or expiry is due; returns how many acted."""
    private = app[PRIVATE_MATCHES]
    acted = 0
    for code in await private.due():
        room = await private.get(code)
        if room is None:
            await private.rearm(code)
            continue
        action, _ = rules.due_action(room, now_ms())
        if action == "expire":
            acted += await _expire(app, code) is not None
        elif action == "start":
            try:
                await _start(app, room)
                acted += 1
            except ProblemError:
                pass  # another replica or the host started it, or it closed
        else:
            await private.rearm(code)
    return acted


async def _private_ctx(app: web.Application) -> AsyncIterator[None]:
    private = app[PRIVATE_MATCHES] = PrivateMatches(app[REDIS], app[SETTINGS], app[SETTINGS])
    try:
        yield
    finally:
        for task in list(private.tasks):
            task.cancel()
        await asyncio.gather(*private.tasks, return_exceptions=True)


async def _countdown_ctx(app: web.Application) -> AsyncIterator[None]:
    """The countdowns and expiries, in every replica that runs matches."""
    interval = app[SETTINGS].private_tick_ms / 1000

    async def run() -> None:
        while True:
            try:
                await tick(app)
            except Exception:
                log.exception("private match countdown failed")
            await asyncio.sleep(interval)  # a schedule, not a synchronisation

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def add_routes(app: web.Application) -> None:
    api = app[API]
    item = BASE + "/{code}"
    ops = (
        ("POST", BASE, create, "privateCreate", "Open a private match and invite players",
         {201: PrivateMatchReply}, PrivateCreateRequest, (409, 422, 429, 503)),
        ("GET", item, get, "privateGet", "A private match by its code",
         {200: PrivateMatchReply}, None, (404,)),
        ("POST", item + "/join", join, "privateJoin", "Take a seat in a private match",
         {200: PrivateMatchReply}, None, (404, 409, 410, 429)),
        ("POST", item + "/leave", leave, "privateLeave",
         "Leave a private match before it starts (the host cancels it)",
         {200: PrivateMatchReply}, None, (404, 409, 410)),
        ("POST", item + "/start", start, "privateStart",
         "Start a private match (the host; at least the mode's min joined)",
         {202: PrivateMatchReply}, None, (403, 404, 409, 410, 503)),
        ("DELETE", item, cancel, "privateCancel", "Cancel a private match (the host)",
         {200: PrivateMatchReply}, None, (403, 404, 409, 410)),
    )  # fmt: skip
    for method, path, handler, op_id, summary, responses, body, errors in ops:
        api.add(
            app,
            Operation(
                method,
                path,
                handler,
                op_id,
                summary,
                "private",
                responses=responses,
                body=body,
                path_params=None if path == BASE else PrivateCodePath,
                auth="user",
                errors=errors,
            ),
        )
    app[PRIVATE_METRICS] = PrivateMetrics(app[METRICS].registry)
    app.cleanup_ctx.append(_private_ctx)
    if ORCHESTRATOR in app:
        app.cleanup_ctx.append(_countdown_ctx)
