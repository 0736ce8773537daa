"""A player's public profile: rating now and after each rated match (`rating_view`).

    GET /api/v1/players/{username}?history=<1..500, default 100>

The username is looked up by its canonical form, as at login. Banned players have
no profile (404), as they have no place on the leaderboards.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from lobby.accounts.usernames import canonical_username
from lobby.http.api import API_PREFIX, Operation, path_of, query_of, reply
from lobby.http.problems import problem
from lobby.http.schemas import Body, Username
from lobby.results.rating_view import RatingPoint, rating_history
from lobby.state import API, DB


class PlayerPath(Body):
    username: Username


class PlayerQuery(Body):
    history: int = Field(default=100, ge=1, le=500)  # rating points, the newest


class PlayerProfile(BaseModel):
    """A player, their rating (ordinal = mu - 3 sigma) and its history, oldest first."""

    user_id: str
    username: str
    created_at: datetime
    matches: int  # stored matches played, rated or not
    rated_matches: int
    rating: float | None  # null until a first rated match
    mu: float | None
    sigma: float | None
    rating_history: list[RatingPoint]


PLAYER_SQL = """
SELECT u.id, u.username, u.created_at, r.mu, r.sigma, r.ordinal, r.matches_played,
       (SELECT count(*) FROM match_players mp WHERE mp.user_id = u.id) AS matches
FROM users u LEFT JOIN ratings r ON r.user_id = u.id
WHERE u.username_canonical = $1 AND u.banned_at IS NULL
"""

# Rated matches in the order their results were stored (the order ratings moved).
RATED_SQL = """
SELECT mp.match_id, m.ended_at, mp.rank, mp.rating_delta,
       (SELECT count(*) FROM match_players o WHERE o.match_id = mp.match_id) AS players
FROM match_players mp
JOIN match_results res ON res.match_id = mp.match_id
JOIN matches m ON m.id = mp.match_id
WHERE mp.user_id = $1 AND mp.rating_delta IS NOT NULL
ORDER BY res.stored_at DESC, mp.match_id DESC
LIMIT $2
"""


async def player_profile(request: web.Request) -> web.Response:
    username = path_of(request, PlayerPath).username
    limit = query_of(request, PlayerQuery).history
    async with (
        request.app[DB].acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        user = await conn.fetchrow(PLAYER_SQL, canonical_username(username))
        if user is None:
            raise problem(404, "player_not_found", "no such player")
        rated = (
            await conn.fetch(RATED_SQL, user["id"], limit) if user["ordinal"] is not None else []
        )
    return reply(
        PlayerProfile(
            user_id=str(user["id"]),
            username=user["username"],
            created_at=user["created_at"],
            matches=user["matches"],
            rated_matches=user["matches_played"] or 0,
            rating=user["ordinal"],
            mu=user["mu"],
            sigma=user["sigma"],
            rating_history=rating_history(user["ordinal"], rated) if rated else [],
        )
    )


def add_routes(app: web.Application) -> None:
    app[API].add(
        app,
        Operation(
            "GET",
            API_PREFIX + "/players/{username}",
            player_profile,
            "playerProfile",
            "A player's profile: rating and rating after each rated match",
            "players",
            responses={200: PlayerProfile},
            path_params=PlayerPath,
            query=PlayerQuery,
            auth="user",
            errors=(404,),
        ),
    )
