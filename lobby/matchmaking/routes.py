"""Matchmaking in the lobby app: the queue's REST and Socket.IO handlers (thin:
`lobby.matchmaking.queues` does the work) and the start-up of the queues and of
the matching loop (`lobby.matchmaking.formation.Matchmaker`).

    POST   /api/v1/queue            join {mode, format, queue}: 201 with the ticket;
                                    `queue` is `ranked` (default) or `casual`; a
                                    party's leader queues the whole party into casual
                                    (`party_ranked` 409, `party_leader_only` 403,
                                    `party_too_big` 409 otherwise);
                                    409 `already_queued` (with the ticket) when the
                                    player already waits in that mode; 409
                                    `already_in_match` (with the assignment) while
                                    the player is assigned to a forming, ready or
                                    live match
    DELETE /api/v1/queue?mode=...   leave one mode (or every mode without `mode`); a
                                    party member takes the party's ticket out
    GET    /api/v1/queue            the caller's tickets (a party member: the party's
                                    ticket) and last match; also keeps the tickets alive

On `/lobby`: every join and leave pushes `queue_status` (the same body as the
GET) to the player's connections, and the `queue_status` call answers it. A player whose last connection on this replica closes leaves every
queue; while connected, the replica keeps their tickets alive. Clients that only
use REST keep their tickets alive by reading the status (TTL
`TRADEARENA_TICKET_TTL_S`, 120 s by default).

The matching loop runs only when the app was created with an orchestrator
(`create_app(settings, orchestrator=...)`); otherwise this replica only serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from lobby import match_options
from lobby.accounts.notifications import notify
from lobby.http.api import API_PREFIX, Operation, body_of, principal, query_of, reply
from lobby.http.problems import problem
from lobby.http.schemas import Body, _enum, format_names, mode_names
from lobby.http.sockets import NAMESPACE, emit_to_user, socket_user, user_room
from lobby.match_options import MatchKind
from lobby.matchmaking import party_rules
from lobby.matchmaking.formation import Formation, Matchmaker, MatchmakingMetrics
from lobby.matchmaking.planner import CASUAL, DEFAULT_RATING, Ticket
from lobby.matchmaking.queues import QueueError, Queues, now_ms
from lobby.state import (
    API,
    CATALOGUE,
    DB,
    MATCHMAKER,
    MATCHMAKING_METRICS,
    METRICS,
    ORCHESTRATOR,
    PARTIES,
    QUEUES,
    REDIS,
    SETTINGS,
    SIGNER,
    SIO,
)
from tradearena import tracing
from tradearena.contracts import keys
from tradearena.contracts.phases import ServerPhase

log = logging.getLogger("lobby.queue")
OVER_SERVER_PHASES = frozenset({str(ServerPhase.FINISHED), str(ServerPhase.CANCELLED)})

ModeName = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class QueueJoinRequest(Body):
    mode: ModeName = Field(json_schema_extra=_enum(mode_names()))
    format: ModeName = Field(default="auto", json_schema_extra=_enum(format_names()))
    queue: Literal["ranked", "casual"] = "ranked"


class QueueLeaveQuery(Body):
    mode: ModeName | None = None


class QueueTicket(BaseModel):
    ticket_id: str
    mode: str
    format: str
    rating: float
    enqueued_at_ms: int
    expires_at_ms: int
    priority: bool
    waited_ms: int
    queue: Literal["ranked", "casual"] = "ranked"
    party_id: str | None = None
    members: list[str] = Field(default_factory=list)  # a party ticket: every member


class QueueAssignment(BaseModel):
    match_id: str
    mode: str | None = None
    format: str | None = None
    state: Literal["forming", "ready"]
    private: str | None = None  # the code of the private match the player sits in
    address: str | None = None
    port: int | None = None
    at: int | None = None


class QueueStatusReply(BaseModel):
    tickets: list[QueueTicket]
    assignment: QueueAssignment | None


class QueueLeaveReply(BaseModel):
    removed: int


def _ticket(t: Ticket, expires: int, now: int) -> QueueTicket:
    return QueueTicket(
        ticket_id=t.ticket_id,
        mode=t.mode,
        format=t.format,
        rating=t.rating,
        enqueued_at_ms=t.enqueued_at_ms,
        expires_at_ms=expires,
        priority=t.priority,
        waited_ms=t.waited_ms(now),
        queue="casual" if t.queue == CASUAL else "ranked",
        party_id=t.party,
        members=list(t.members),
    )


async def _rating(app: web.Application, user_id: str) -> float:
    mu = await app[DB].fetchval("SELECT mu FROM ratings WHERE user_id = $1", uuid.UUID(user_id))
    return float(mu) if mu is not None else DEFAULT_RATING


async def _status(app: web.Application, user_id: str) -> QueueStatusReply:
    queues = app[QUEUES]
    await queues.heartbeat(user_id)
    status = await queues.status(user_id)
    tickets = status.tickets
    party = await app[PARTIES].of(user_id) if not tickets and PARTIES in app else None
    if party is not None and party.size > 1 and party.leader != user_id:
        # a member sees the ticket their leader holds for the party
        held = await queues.status(party.leader)
        tickets = [(t, exp) for t, exp in held.tickets if t.party == party.party_id]
    now = now_ms()
    assignment = None
    if status.assignment is not None:
        fields = QueueAssignment.model_fields
        assignment = QueueAssignment.model_validate(
            {k: v for k, v in status.assignment.items() if k in fields}
        )
    return QueueStatusReply(
        tickets=[_ticket(t, exp, now) for t, exp in tickets], assignment=assignment
    )


async def join(request: web.Request) -> web.Response:
    app = request.app
    user_id = principal(request).user_id
    body = body_of(request, QueueJoinRequest)
    queues = app[QUEUES]
    party = await app[PARTIES].of(user_id) if PARTIES in app else None
    mode = app[CATALOGUE].modes.get(body.mode)
    try:
        # an unknown mode is refused by the queues themselves (`unknown_mode`)
        whole_party = mode is not None and party_rules.check_queue(
            party, user_id, body.queue, mode.players.max
        )
    except party_rules.PartyRuleError as exc:
        app[MATCHMAKING_METRICS].join_refusals.labels(exc.code).inc()
        raise problem(exc.status, exc.code, exc.message) from None
    members = party.member_ids if party is not None and whole_party else (user_id,)
    for member in members:
        await _release_if_over(app, member)
    try:
        ratings = [await _rating(app, member) for member in members]
        result = await queues.join(
            user_id,
            body.mode,
            body.format,
            party_rules.party_rating(ratings),
            refuse_if_assigned=True,
            traceparent=tracing.current_traceparent(),  # the journey: this request's trace
            queue=body.queue,
            party=party.party_id if party is not None and whole_party else None,
            members=members if whole_party else (),
        )
    except QueueError as exc:
        status = 409 if exc.code == "party_changed" else 422
        raise problem(status, exc.code, exc.message) from None
    if result.assignment is not None:
        app[MATCHMAKING_METRICS].join_refusals.labels("already_in_match").inc()
        raise problem(
            409,
            "already_in_match",
            f"already assigned to match {result.assignment.get('match_id')!r}; "
            "queue again once it is over",
            assignment=result.assignment,
        )
    exp = now_ms() + queues.settings.ticket_ttl_s * 1000
    ticket = _ticket(result.ticket, exp, now_ms())
    if not result.created:
        app[MATCHMAKING_METRICS].join_refusals.labels("already_queued").inc()
        raise problem(
            409,
            "already_queued",
            f"already waiting in mode {body.mode!r}; leave first to change the format",
            ticket=ticket.model_dump(),
        )
    _wake(app)
    for member in members:
        await _push_status(app, member)
    return reply(ticket, status=201)


async def _release_if_over(app: web.Application, user_id: str) -> None:
    """Forget the player's assignment once its match is over, so that they may queue.

    A forming assignment stays (its formation ends in `finish` or `requeue`; a dead
    replica's is recovered by `recover_stale`). A ready one is over when the match
    server reported Finished or Cancelled, or when the runtime says the match is in a
    terminal phase or unknown; otherwise it lasts at most `assignment_ttl_s`.
    """
    assignment = await app[QUEUES].assignment(user_id)
    if assignment is None or assignment.get("state") != "ready":
        return
    match_id = str(assignment.get("match_id"))
    server_phase = await app[REDIS].hget(keys.match_status(match_id), "phase")
    if isinstance(server_phase, bytes):
        server_phase = server_phase.decode()
    over = server_phase in OVER_SERVER_PHASES
    if not over and app.get(ORCHESTRATOR) is not None:
        try:
            status = await app[ORCHESTRATOR].status(match_id)
        except Exception:  # the runtime cannot say: the assignment stands
            log.warning("match status unavailable", extra={"match_id": match_id})
            return
        over = status is None or status.phase.terminal
    if over:
        await app[QUEUES].release(user_id, match_id)


release_if_over = _release_if_over  # private matches free a finished match's players too


async def leave(request: web.Request) -> web.Response:
    query = query_of(request, QueueLeaveQuery)
    user_id = principal(request).user_id
    app = request.app
    removed = await app[QUEUES].leave(user_id, query.mode)
    party = await app[PARTIES].of(user_id) if PARTIES in app else None
    members = party.member_ids if party is not None and party.size > 1 else (user_id,)
    if not removed and party is not None and party.size > 1:
        removed = await app[PARTIES].unqueue(user_id)  # any member may stop the party waiting
    if removed:
        for member in members:
            await _push_status(app, member)
    return reply(QueueLeaveReply(removed=removed))


async def status(request: web.Request) -> web.Response:
    return reply(await _status(request.app, principal(request).user_id))


async def _push_status(app: web.Application, user_id: str) -> None:
    """Every `/lobby` connection of the player sees the queue change (`queue_status`)."""
    try:
        status = await _status(app, user_id)
        await emit_to_user(app, user_id, "queue_status", status.model_dump(mode="json"))
    except Exception:  # live updates are best effort; the REST answer stands
        log.exception("queue_status push failed", extra={"user_id": user_id})


def _wake(app: web.Application) -> None:
    matchmaker = app.get(MATCHMAKER)
    if matchmaker is not None:
        matchmaker.wake.set()


def _local_users(app: web.Application) -> list[str]:
    rooms: dict[str, Any] = app[SIO].manager.rooms.get(NAMESPACE, {})
    return [room[5:] for room, sids in rooms.items() if room and room.startswith("user:") and sids]


async def _queues_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[QUEUES] = Queues(app[REDIS], app[CATALOGUE], settings)

    async def keepalive() -> None:
        while True:
            await asyncio.sleep(max(1.0, settings.ticket_ttl_s / 3))  # a schedule, not a sync
            for user_id in _local_users(app):
                with contextlib.suppress(Exception):
                    await app[QUEUES].heartbeat(user_id)

    task = asyncio.create_task(keepalive())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _socket_handlers(app: web.Application) -> None:
    sio = app[SIO]
    previous = sio.handlers.get(NAMESPACE, {}).get("disconnect")

    async def disconnect(sid: str, reason: Any = None) -> None:
        user_id: str | None = None
        with contextlib.suppress(Exception):
            user_id = await socket_user(sio, sid)
        if previous is not None:
            await previous(sid, reason)
        if user_id is None:
            return
        others = [
            s for s, _ in sio.manager.get_participants(NAMESPACE, user_room(user_id)) if s != sid
        ]
        if not others and QUEUES in app:
            removed = await app[QUEUES].disconnect(user_id)
            if removed:
                log.info("left the queues on disconnect", extra={"user_id": user_id})

    async def queue_status(sid: str, data: Any = None) -> dict[str, Any]:
        user_id = await socket_user(sio, sid)
        return (await _status(app, user_id)).model_dump(mode="json")

    sio.on("disconnect", disconnect, namespace=NAMESPACE)
    sio.on("queue_status", queue_status, namespace=NAMESPACE)


async def _matchmaker_ctx(app: web.Application) -> AsyncIterator[None]:
    """The matching loop of this replica, between the queues' start and stop."""
    orchestrator = app[ORCHESTRATOR]
    queues = app[QUEUES]

    async def notifier(user_id: str, kind: str, payload: dict[str, Any]) -> object:
        return await notify(app, user_id, kind, payload)

    async def record_kind(match_id: str, kind: MatchKind) -> None:
        await match_options.record(app[DB], match_id, kind)

    formation = Formation(
        orchestrator,
        queues,
        app[SIGNER],
        notifier,
        queues.catalogue,
        app[SETTINGS],
        record_kind=record_kind,
    )
    matchmaker = Matchmaker(queues, formation, metrics=app[MATCHMAKING_METRICS])
    app[MATCHMAKER] = matchmaker
    task = asyncio.create_task(matchmaker.run())
    try:
        yield
    finally:
        await matchmaker.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def add_routes(app: web.Application) -> None:
    api = app[API]
    base = API_PREFIX + "/queue"
    api.add(
        app,
        Operation(
            "POST",
            base,
            join,
            "queueJoin",
            "Join the matchmaking queue of a mode (format or `auto`)",
            "queue",
            responses={201: QueueTicket},
            body=QueueJoinRequest,
            auth="user",
            errors=(409,),
        ),
    )
    api.add(
        app,
        Operation(
            "DELETE",
            base,
            leave,
            "queueLeave",
            "Leave the queue of one mode, or of every mode",
            "queue",
            responses={200: QueueLeaveReply},
            query=QueueLeaveQuery,
            auth="user",
        ),
    )
    api.add(
        app,
        Operation(
            "GET",
            base,
            status,
            "queueStatus",
            "The caller's tickets and last match; keeps the tickets alive",
            "queue",
            responses={200: QueueStatusReply},
            auth="user",
        ),
    )
    app.cleanup_ctx.append(_queues_ctx)
    _socket_handlers(app)
    app[MATCHMAKING_METRICS] = MatchmakingMetrics(app[METRICS].registry)  # on the lobby's /metrics
    if ORCHESTRATOR in app:
        app.cleanup_ctx.append(_matchmaker_ctx)
