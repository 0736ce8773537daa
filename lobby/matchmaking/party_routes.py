"""Parties in the lobby app: thin REST handlers over lobby.matchmaking.parties.

    POST   /api/v1/parties                            create; the caller leads (201)
    GET    /api/v1/parties/me                         the caller's party and invitations
    POST   /api/v1/parties/{id}/invites {username}    the leader invites (201); the invitee
                                                      gets a `party_invite` notification
    DELETE /api/v1/parties/{id}/invites/{username}    the leader revokes, the invitee declines
    POST   /api/v1/parties/{id}/decline               the invitee declines
    POST   /api/v1/parties/{id}/join                  the invitee accepts and joins
    POST   /api/v1/parties/{id}/leave                 a member leaves (a leader hands over)
    DELETE /api/v1/parties/{id}/members/{username}    the leader removes a member
    DELETE /api/v1/parties/{id}                       the leader disbands the party

Every change is pushed to the members' and invitees' `/lobby` connections as
`party_status` (the body of GET /parties/me), and takes the party's tickets out of the
queues. A member whose last `/lobby` connection closes takes them out too.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from lobby.accounts.notifications import notify
from lobby.accounts.usernames import canonical_username
from lobby.http.api import API_PREFIX, Operation, body_of, path_of, principal, reply
from lobby.http.problems import ProblemError, problem, too_many
from lobby.http.schemas import Body, Username
from lobby.http.sockets import NAMESPACE, emit_to_user, socket_user, user_room
from lobby.matchmaking.parties import Parties, PartyMetrics, party_doc
from lobby.matchmaking.party_rules import Member, Party, PartyLimits, PartyRuleError
from lobby.matchmaking.queues import now_ms
from lobby.state import API, DB, LIMITER, METRICS, PARTIES, PARTY_METRICS, REDIS, SETTINGS, SIO

log = logging.getLogger("lobby.parties")
PARTY_INVITE = "party_invite"  # notification kind


PartyId = Annotated[str, StringConstraints(pattern=r"^p-[0-9a-f]{16}$")]


class PartyPath(Body):
    party_id: PartyId


class InviteBody(Body):
    username: Username


class MemberPath(Body):
    party_id: PartyId
    username: Username


class PartyMemberView(BaseModel):
    user_id: str
    username: str
    leader: bool


class PartyInviteView(BaseModel):
    username: str
    expires_at_ms: int


class PartyView(BaseModel):
    party_id: str
    leader: str
    members: list[PartyMemberView]
    invites: list[PartyInviteView]
    created_at_ms: int
    max_size: int


class InvitationView(BaseModel):
    party_id: str
    leader: str
    members: list[str]
    expires_at_ms: int


class MyParty(BaseModel):
    party: PartyView | None
    invitations: list[InvitationView]


class LeaveReply(BaseModel):
    party: PartyView | None


class RemovedReply(BaseModel):
    removed: bool


def _view(app: web.Application, party: Party) -> PartyView:
    return PartyView(**party_doc(party, now_ms()), max_size=app[SETTINGS].party_max_size)


async def _mine(app: web.Application, user_id: str) -> MyParty:
    parties = app[PARTIES]
    party = await parties.of(user_id)
    invitations = [
        InvitationView(
            party_id=i.party_id,
            leader=i.leader,
            members=list(i.members),
            expires_at_ms=i.expires_at_ms,
        )
        for i in await parties.invitations(user_id)
    ]
    return MyParty(party=_view(app, party) if party else None, invitations=invitations)


async def _push(app: web.Application, user_ids: Iterable[str]) -> None:
    """Each user's `/lobby` connections see their party as it is now."""
    for user_id in dict.fromkeys(user_ids):
        try:
            mine = await _mine(app, user_id)
            await emit_to_user(app, user_id, "party_status", mine.model_dump(mode="json"))
        except Exception:  # live updates are best effort; the REST answer stands
            log.exception("party_status push failed", extra={"user_id": user_id})


async def _member(app: web.Application, user_id: str) -> Member:
    name = await app[DB].fetchval("SELECT username FROM users WHERE id = $1", uuid.UUID(user_id))
    if name is None:
        raise problem(404, "user_not_found", "no such user")
    return Member(user_id, str(name))


async def _by_name(app: web.Application, username: str) -> Member:
    row = await app[DB].fetchrow(
        "SELECT id, username FROM users WHERE username_canonical = $1 AND banned_at IS NULL",
        canonical_username(username),
    )
    if row is None:
        raise problem(404, "user_not_found", f"no player named {username!r}")
    return Member(str(row["id"]), str(row["username"]))


def _refused(exc: PartyRuleError) -> ProblemError:
    return problem(exc.status, exc.code, exc.message)


async def create(request: web.Request) -> web.Response:
    app = request.app
    me = await _member(app, principal(request).user_id)
    try:
        party = await app[PARTIES].create(me)
    except PartyRuleError as exc:
        raise _refused(exc) from None
    await _push(app, [me.user_id])
    return reply(_view(app, party), status=201)


async def mine(request: web.Request) -> web.Response:
    return reply(await _mine(request.app, principal(request).user_id))


async def invite(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    user_id = principal(request).user_id
    party_id = path_of(request, PartyPath).party_id
    invitee = await _by_name(app, body_of(request, InviteBody).username)
    decision = await app[LIMITER].check(
        "party_invite", user_id, settings.party_invite_limit, settings.party_invite_window_s
    )
    if not decision.allowed:
        app[METRICS].rate_limited.labels("party_invite").inc()
        app[PARTIES].metrics.invites.labels("refused").inc()
        raise too_many("rate_limited", "too many invitations; slow down", decision.retry_after_s)
    try:
        party, inv = await app[PARTIES].invite(party_id, user_id, invitee)
    except PartyRuleError as exc:
        raise _refused(exc) from None
    await notify(
        app,
        invitee.user_id,
        PARTY_INVITE,
        {
            "party_id": party_id,
            "leader": inv.invited_by,
            "members": [m.username for m in party.members],
            "expires_at_ms": inv.expires_at_ms,
        },
    )
    await _push(app, party.member_ids)
    return reply(PartyInviteView(username=inv.username, expires_at_ms=inv.expires_at_ms), 201)


async def _uninvite(request: web.Request, party_id: str, target: str) -> web.Response:
    app = request.app
    user_id = principal(request).user_id
    try:
        removed = await app[PARTIES].uninvite(party_id, user_id, target)
    except PartyRuleError as exc:
        raise _refused(exc) from None
    party = await app[PARTIES].get(party_id)
    await _push(app, [target, *(party.member_ids if party else ())])
    return reply(RemovedReply(removed=removed))


async def uninvite(request: web.Request) -> web.Response:
    path = path_of(request, MemberPath)
    target = await _by_name(request.app, path.username)
    return await _uninvite(request, path.party_id, target.user_id)


async def decline(request: web.Request) -> web.Response:
    party_id = path_of(request, PartyPath).party_id
    return await _uninvite(request, party_id, principal(request).user_id)


async def join(request: web.Request) -> web.Response:
    app = request.app
    me = await _member(app, principal(request).user_id)
    party_id = path_of(request, PartyPath).party_id
    try:
        party = await app[PARTIES].join(party_id, me)
    except PartyRuleError as exc:
        raise _refused(exc) from None
    await _push(app, party.member_ids)
    return reply(_view(app, party))


async def _remove(request: web.Request, party_id: str, target: str) -> web.Response:
    app = request.app
    user_id = principal(request).user_id
    before = await app[PARTIES].get(party_id)
    try:
        after = await app[PARTIES].remove(party_id, target, user_id)
    except PartyRuleError as exc:
        raise _refused(exc) from None
    await _push(app, [target, *(before.member_ids if before else ())])
    # the leaver sees no party; the leader who removed someone sees the party as it is now
    shown = after if after is not None and target != user_id else None
    return reply(LeaveReply(party=_view(app, shown) if shown else None))


async def leave(request: web.Request) -> web.Response:
    party_id = path_of(request, PartyPath).party_id
    return await _remove(request, party_id, principal(request).user_id)


async def kick(request: web.Request) -> web.Response:
    path = path_of(request, MemberPath)
    target = await _by_name(request.app, path.username)
    return await _remove(request, path.party_id, target.user_id)


async def disband(request: web.Request) -> web.Response:
    app = request.app
    party_id = path_of(request, PartyPath).party_id
    try:
        party = await app[PARTIES].disband(party_id, principal(request).user_id)
    except PartyRuleError as exc:
        raise _refused(exc) from None
    await _push(app, party.member_ids)
    return reply(LeaveReply(party=None))


async def _parties_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    limits = PartyLimits(s.party_max_size, s.party_max_invites, s.party_invite_ttl_s * 1000)
    app[PARTIES] = Parties(app[REDIS], limits, app[PARTY_METRICS])
    yield


def _socket_handlers(app: web.Application) -> None:
    """A member whose last `/lobby` connection closes takes the party out of the queues."""
    sio = app[SIO]
    previous = sio.handlers.get(NAMESPACE, {}).get("disconnect")

    async def disconnect(sid: str, reason: Any = None) -> None:
        user_id: str | None = None
        with contextlib.suppress(Exception):
            user_id = await socket_user(sio, sid)
        if previous is not None:
            await previous(sid, reason)
        if user_id is None or PARTIES not in app:
            return
        others = [
            s for s, _ in sio.manager.get_participants(NAMESPACE, user_room(user_id)) if s != sid
        ]
        if not others:
            with contextlib.suppress(Exception):
                if await app[PARTIES].unqueue(user_id):
                    log.info("party left the queues on disconnect", extra={"user_id": user_id})

    async def party_status(sid: str, data: Any = None) -> dict[str, Any]:
        user_id = await socket_user(sio, sid)
        return (await _mine(app, user_id)).model_dump(mode="json")

    sio.on("disconnect", disconnect, namespace=NAMESPACE)
    sio.on("party_status", party_status, namespace=NAMESPACE)


def add_routes(app: web.Application) -> None:
    api = app[API]
    base = API_PREFIX + "/parties"
    one = base + "/{party_id}"
    ops = (
        (
            "POST",
            base,
            create,
            "partyCreate",
            "Create a party; the caller leads it",
            {201: PartyView},
            None,
            None,
            (409,),
        ),
        (
            "GET",
            base + "/me",
            mine,
            "partyMine",
            "The caller's party and invitations",
            {200: MyParty},
            None,
            None,
            (),
        ),
        (
            "POST",
            one + "/invites",
            invite,
            "partyInvite",
            "The leader invites a player by username (a `party_invite` notification)",
            {201: PartyInviteView},
            InviteBody,
            PartyPath,
            (403, 404, 409, 429),
        ),
        (
            "DELETE",
            one + "/invites/{username}",
            uninvite,
            "partyUninvite",
            "The leader revokes an invitation, or the invitee declines it",
            {200: RemovedReply},
            None,
            MemberPath,
            (403, 404),
        ),
        (
            "POST",
            one + "/decline",
            decline,
            "partyDecline",
            "The invitee declines",
            {200: RemovedReply},
            None,
            PartyPath,
            (404,),
        ),
        (
            "POST",
            one + "/join",
            join,
            "partyJoin",
            "The invitee accepts and joins",
            {200: PartyView},
            None,
            PartyPath,
            (404, 409, 410),
        ),
        (
            "POST",
            one + "/leave",
            leave,
            "partyLeave",
            "Leave the party (a leaving leader hands over to the longest member)",
            {200: LeaveReply},
            None,
            PartyPath,
            (404,),
        ),
        (
            "DELETE",
            one + "/members/{username}",
            kick,
            "partyKick",
            "The leader removes a member",
            {200: LeaveReply},
            None,
            MemberPath,
            (403, 404),
        ),
        (
            "DELETE",
            one,
            disband,
            "partyDisband",
            "The leader disbands the party",
            {200: LeaveReply},
            None,
            PartyPath,
            (403, 404),
        ),
    )
    for method, path, handler, op_id, summary, responses, body, path_params, errors in ops:
        api.add(
            app,
            Operation(
                method,
                path,
                handler,
                op_id,
                summary,
                "parties",
                responses=responses,
                body=body,
                path_params=path_params,
                auth="user",
                errors=errors,
            ),
        )
    app[PARTY_METRICS] = PartyMetrics(app[METRICS].registry)
    app.cleanup_ctx.append(_parties_ctx)
    _socket_handlers(app)
