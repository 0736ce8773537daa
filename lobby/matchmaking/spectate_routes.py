"""Watching live matches: the REST side (`lobby.matchmaking.live` reads,
`lobby.matchmaking.live_view` decides).

    GET  /api/v1/matches/live?mode=&limit=   the live matches anyone may watch (private
                                             ones never listed), most watched first
    POST /api/v1/matches/{match_id}/spectate a spectator token and the match server's
                                             address: 404 `match_not_found`, 403
                                             `private_match` (unless the caller plays in
                                             it, hosts it or was invited to it), 409
                                             `match_not_live`, 429 `rate_limited`

The spectator connects to the match server's `/match` namespace with the token and
receives a view `delay_ms` behind (docs/matchserver.md). Both answer 503
`orchestrator_unavailable` on a lobby that does not run matches.
"""

from __future__ import annotations

from aiohttp import web

from lobby.http.api import API_PREFIX, Operation, path_of, principal, query_of, reply
from lobby.http.problems import problem, too_many
from lobby.http.schemas import MatchPath
from lobby.matchmaking import live
from lobby.matchmaking import live_view as view
from lobby.state import API, LIMITER, LIVE_BOARD, METRICS, ORCHESTRATOR, SETTINGS, SPECTATE_METRICS

RATE_BUCKET = "spectate"
STATUS = {view.NOT_FOUND: 404, view.PRIVATE: 403, view.NOT_LIVE: 409}
DETAIL = {
    view.NOT_FOUND: "no such match",
    view.PRIVATE: "a private match: only its players and invitees may watch it",
    view.NOT_LIVE: "the match is not live: spectators watch only live matches",
}


def _need_orchestrator(app: web.Application) -> None:
    if ORCHESTRATOR not in app:
        raise problem(503, "orchestrator_unavailable", "this lobby does not run matches")


async def live_matches(request: web.Request) -> web.Response:
    _need_orchestrator(request.app)
    query = query_of(request, view.LiveQuery)
    return reply(await live.live_page(request.app, query.mode, query.limit))


async def spectate(request: web.Request) -> web.Response:
    app = request.app
    _need_orchestrator(app)
    match_id = path_of(request, MatchPath).match_id
    user_id = principal(request).user_id
    metrics = app[SPECTATE_METRICS]
    settings = app[SETTINGS]
    decision = await app[LIMITER].check(
        RATE_BUCKET, user_id, settings.spectate_limit_user, settings.rate_window_s
    )
    if not decision.allowed:
        metrics.tokens.labels("rate_limited").inc()
        app[METRICS].rate_limited.labels(RATE_BUCKET).inc()
        raise too_many(
            "rate_limited", "too many spectate requests; slow down", decision.retry_after_s
        )
    try:
        grant = await live.grant(app, match_id, user_id)
    except live.SpectateRefusedError as exc:
        metrics.tokens.labels(exc.code).inc()
        raise problem(STATUS[exc.code], exc.code, DETAIL[exc.code]) from None
    metrics.tokens.labels("issued").inc()
    return reply(grant)


def add_routes(app: web.Application) -> None:
    api = app[API]
    api.add(
        app,
        Operation(
            "GET",
            API_PREFIX + "/matches/live",
            live_matches,
            "liveMatches",
            "The live matches anyone may watch, most watched first",
            "matches",
            responses={200: view.LivePage},
            query=view.LiveQuery,
            auth="user",
            errors=(503,),
        ),
    )
    api.add(
        app,
        Operation(
            "POST",
            API_PREFIX + "/matches/{match_id}/spectate",
            spectate,
            "spectateMatch",
            "A spectator token for a live match and its server's address",
            "matches",
            responses={200: view.SpectateGrant},
            path_params=MatchPath,
            auth="user",
            errors=(404, 409, 503),
            description="The spectator sees the match `delay_ms` late, read-only. "
            "Private matches: only their players, host and invitees.",
        ),
    )
    app[SPECTATE_METRICS] = live.SpectateMetrics(app[METRICS].registry)  # on the lobby's /metrics
    app[LIVE_BOARD] = live.LiveBoard(app[SETTINGS].live_cache_s)
