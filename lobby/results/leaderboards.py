"""Leaderboards: all-time (OpenSkill), season and daily (net PnL), paginated.

Storage: SQL queries over the results the worker stored, not a separate store.
PostgreSQL is the source of truth and every result lands there in one
transaction, so the boards can never disagree with the match history, and
nothing has to be rebuilt after a failure or a replay. All-time reads the
`ratings` table by its `(ordinal desc, user_id)` index; season and daily
aggregate the `leaderboard_results` view (finished matches, `pnl = equity -
bankroll`) over the `matches (ended_at)` index range of the window. At the
scale of the product (thousands of players, tens of thousands of matches a
day) this is milliseconds; if it ever is not, the same queries can feed
Redis sorted sets rebuilt from PostgreSQL without changing the API.

Windows: the day is the current UTC day; seasons are fixed 120-day periods
counted from `TRADEARENA_SEASON_EPOCH` (2026-01-01 UTC), season 1 first.
Ranking: season/daily by total net PnL, then wins, then user id; all-time by
ordinal (mu - 3 sigma), then user id. Banned players are left out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from lobby.http.api import API_PREFIX, Operation, path_of, query_of, reply
from lobby.http.schemas import Body
from lobby.state import API, DB, SETTINGS

Period = Literal["all", "season", "daily"]


def day_window(now: datetime) -> tuple[datetime, datetime]:
    start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def season_window(now: datetime, epoch: date, days: int) -> tuple[int, datetime, datetime]:
    """(season number, start, end) of the season holding `now`; season 1 starts at epoch."""
    origin = datetime(epoch.year, epoch.month, epoch.day, tzinfo=UTC)
    index = (now - origin) // timedelta(days=days)
    start = origin + index * timedelta(days=days)
    return index + 1, start, start + timedelta(days=days)


class LeaderboardPath(Body):
    period: Period


class LeaderboardQuery(Body):
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=100_000)


class LeaderboardEntry(BaseModel):
    rank: int
    user_id: str
    username: str
    matches: int
    wins: int | None = None  # season and daily
    pnl: str | None = None  # season and daily: exact decimal, USDT
    rating: float | None = None  # all-time: ordinal (mu - 3 sigma)
    mu: float | None = None
    sigma: float | None = None


class LeaderboardPage(BaseModel):
    period: Period
    season: int | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    items: list[LeaderboardEntry]
    next_offset: int | None


ALL_TIME_SQL = """
SELECT r.user_id, u.username, r.ordinal, r.mu, r.sigma, r.matches_played
FROM ratings r JOIN users u ON u.id = r.user_id
WHERE u.banned_at IS NULL
ORDER BY r.ordinal DESC, r.user_id
LIMIT $1 OFFSET $2
"""

WINDOW_SQL = """
SELECT l.user_id, u.username, sum(l.pnl) AS pnl, count(*) AS matches,
       count(*) FILTER (WHERE l.rank = 1) AS wins
FROM leaderboard_results l JOIN users u ON u.id = l.user_id
WHERE l.ended_at >= $1 AND l.ended_at < $2 AND u.banned_at IS NULL
GROUP BY l.user_id, u.username
ORDER BY pnl DESC, wins DESC, l.user_id
LIMIT $3 OFFSET $4
"""


async def leaderboard(request: web.Request) -> web.Response:
    period = path_of(request, LeaderboardPath).period
    query = query_of(request, LeaderboardQuery)
    pool = request.app[DB]
    now = datetime.now(UTC)
    season = start = end = None
    items: list[LeaderboardEntry] = []
    if period == "all":
        rows = await pool.fetch(ALL_TIME_SQL, query.limit + 1, query.offset)
        for i, r in enumerate(rows[: query.limit]):
            items.append(
                LeaderboardEntry(
                    rank=query.offset + i + 1,
                    user_id=str(r["user_id"]),
                    username=r["username"],
                    matches=r["matches_played"],
                    rating=r["ordinal"],
                    mu=r["mu"],
                    sigma=r["sigma"],
                )
            )
    else:
        if period == "daily":
            start, end = day_window(now)
        else:
            settings = request.app[SETTINGS]
            season, start, end = season_window(now, settings.season_epoch, settings.season_days)
        rows = await pool.fetch(WINDOW_SQL, start, end, query.limit + 1, query.offset)
        for i, r in enumerate(rows[: query.limit]):
            items.append(
                LeaderboardEntry(
                    rank=query.offset + i + 1,
                    user_id=str(r["user_id"]),
                    username=r["username"],
                    matches=r["matches"],
                    wins=r["wins"],
                    pnl=str(r["pnl"]),
                )
            )
    more = len(rows) > query.limit
    return reply(
        LeaderboardPage(
            period=period,
            season=season,
            window_start=start,
            window_end=end,
            items=items,
            next_offset=query.offset + query.limit if more else None,
        )
    )


def add_routes(app: web.Application) -> None:
    app[API].add(
        app,
        Operation(
            "GET",
            API_PREFIX + "/leaderboards/{period}",
            leaderboard,
            "leaderboard",
            "All-time (rating), season or daily (net PnL) board",
            "leaderboards",
            responses={200: LeaderboardPage},
            path_params=LeaderboardPath,
            query=LeaderboardQuery,
            auth="public",
        ),
    )
