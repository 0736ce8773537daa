"""Admin: the live matches (from the orchestrator) and cancelling one.

Both need the runtime the lobby runs matches on (`app[ORCHESTRATOR]`, given to
`create_app(settings, orchestrator=...)`); without one they answer 503
`orchestrator_unavailable`. A cancel is recorded in `admin_audit` (action
`match.cancel`, with the reason and the phase it was in) before the runtime
is asked to cancel, so no cancel ever goes unaudited.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from lobby.accounts.admin import record_audit
from lobby.http.api import API_PREFIX, Operation, body_of, path_of, principal, reply
from lobby.http.problems import problem
from lobby.http.schemas import Body, MatchPath
from lobby.state import API, DB, ORCHESTRATOR
from tradearena.contracts.orchestration import MatchStatus, Orchestrator


class LiveMatch(BaseModel):
    match_id: str
    phase: str
    address: str | None
    port: int | None
    url: str | None
    reason: str | None
    restarts: int


class LiveMatches(BaseModel):
    items: list[LiveMatch]


class CancelMatchRequest(Body):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


def _live(s: MatchStatus) -> LiveMatch:
    return LiveMatch(
        match_id=s.match_id,
        phase=str(s.phase),
        address=s.address,
        port=s.port,
        url=s.url,
        reason=s.reason,
        restarts=s.restarts,
    )


def _orchestrator(app: web.Application) -> Orchestrator:
    orchestrator = app.get(ORCHESTRATOR)
    if orchestrator is None:
        raise problem(503, "orchestrator_unavailable", "this lobby does not run matches")
    return orchestrator


async def live_matches(request: web.Request) -> web.Response:
    statuses = await _orchestrator(request.app).list_active()
    items = [_live(s) for s in sorted(statuses, key=lambda s: s.match_id)]
    return reply(LiveMatches(items=items))


async def cancel_match(request: web.Request) -> web.Response:
    orchestrator = _orchestrator(request.app)
    match_id = path_of(request, MatchPath).match_id
    body = body_of(request, CancelMatchRequest)
    before = await orchestrator.status(match_id)
    if before is None:
        raise problem(404, "match_not_found", "no such match on this runtime")
    if before.phase.terminal:
        raise problem(409, "match_over", f"the match is already {before.phase}")
    await record_audit(
        request.app[DB],
        principal(request).user_id,
        "match.cancel",
        "match",
        match_id,
        {"reason": body.reason, "phase": str(before.phase)},
    )
    await orchestrator.cancel(match_id, body.reason)
    after = await orchestrator.status(match_id) or before
    return reply(_live(after), status=202)


def add_routes(app: web.Application) -> None:
    api = app[API]
    base = API_PREFIX + "/admin/matches"
    api.add(
        app,
        Operation(
            "GET",
            base,
            live_matches,
            "adminLiveMatches",
            "Matches the runtime is running or starting",
            "admin",
            responses={200: LiveMatches},
            auth="admin",
            errors=(503,),
        ),
    )
    api.add(
        app,
        Operation(
            "POST",
            base + "/{match_id}/cancel",
            cancel_match,
            "adminCancelMatch",
            "Cancel a match (audited)",
            "admin",
            responses={202: LiveMatch},
            body=CancelMatchRequest,
            path_params=MatchPath,
            auth="admin",
            errors=(404, 409, 503),
        ),
    )
