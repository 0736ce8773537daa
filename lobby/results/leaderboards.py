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

Around me: `?around=me` (with an access token) serves the page of `limit` entries
centred on the caller's rank (`around_offset`) instead of the one at `offset`, and
names the caller's entry in `me`; a caller not on the board gets the first page and
`me: null`. The rank and the page are read in one snapshot.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, Field

from lobby.http.api import API_PREFIX, Operation, path_of, query_of, reply
from lobby.http.principal import authenticate
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


def around_offset(rank: int, limit: int) -> int:
    """The offset of the page of `limit` entries that shows `rank` (1-based) in its
    middle, or as near as the top of the board allows."""
    return max(0, rank - 1 - limit // 2)


class LeaderboardQuery(Body):
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=100_000)
    around: Literal["me"] | None = None  # the page around the caller (needs a token)


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
    offset: int = 0  # of the first item
    me: LeaderboardEntry | None = None  # with around=me: the caller's entry, if ranked


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


ALL_TIME_RANK_SQL = """
SELECT (SELECT 1 + count(*) FROM ratings r JOIN users u ON u.id = r.user_id
        WHERE u.banned_at IS NULL
          AND (r.ordinal > m.ordinal OR (r.ordinal = m.ordinal AND r.user_id < m.user_id)))
FROM ratings m JOIN users u ON u.id = m.user_id
WHERE m.user_id = $1 AND u.banned_at IS NULL
"""

WINDOW_RANK_SQL = """
SELECT rank FROM (
    SELECT l.user_id, row_number() OVER (
        ORDER BY sum(l.pnl) DESC, count(*) FILTER (WHERE l.rank = 1) DESC, l.user_id) AS rank
    FROM leaderboard_results l JOIN users u ON u.id = l.user_id
    WHERE l.ended_at >= $1 AND l.ended_at < $2 AND u.banned_at IS NULL
    GROUP BY l.user_id
) board WHERE user_id = $3
"""


def _all_time(rows: list[asyncpg.Record], offset: int) -> list[LeaderboardEntry]:
    return [
        LeaderboardEntry(
            rank=offset + i + 1,
            user_id=str(r["user_id"]),
            username=r["username"],
            matches=r["matches_played"],
            rating=r["ordinal"],
            mu=r["mu"],
            sigma=r["sigma"],
        )
        for i, r in enumerate(rows)
    ]


def _windowed(rows: list[asyncpg.Record], offset: int) -> list[LeaderboardEntry]:
    return [
        LeaderboardEntry(
            rank=offset + i + 1,
            user_id=str(r["user_id"]),
            username=r["username"],
            matches=r["matches"],
            wins=r["wins"],
            pnl=str(r["pnl"]),
        )
        for i, r in enumerate(rows)
    ]


async def leaderboard(request: web.Request) -> web.Response:
    period = path_of(request, LeaderboardPath).period
    query = query_of(request, LeaderboardQuery)
    me = uuid.UUID((await authenticate(request)).user_id) if query.around == "me" else None
    now = datetime.now(UTC)
    season = start = end = None
    if period == "daily":
        start, end = day_window(now)
    elif period == "season":
        settings = request.app[SETTINGS]
        season, start, end = season_window(now, settings.season_epoch, settings.season_days)
    offset = query.offset
    async with (
        request.app[DB].acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        if me is not None:
            rank = await (
                conn.fetchval(ALL_TIME_RANK_SQL, me)
                if period == "all"
                else conn.fetchval(WINDOW_RANK_SQL, start, end, me)
            )
            offset = around_offset(rank, query.limit) if rank else 0
        if period == "all":
            rows = await conn.fetch(ALL_TIME_SQL, query.limit + 1, offset)
            items = _all_time(rows[: query.limit], offset)
        else:
            rows = await conn.fetch(WINDOW_SQL, start, end, query.limit + 1, offset)
            items = _windowed(rows[: query.limit], offset)
    more = len(rows) > query.limit
    return reply(
        LeaderboardPage(
            period=period,
            season=season,
            window_start=start,
            window_end=end,
            items=items,
            next_offset=offset + query.limit if more else None,
            offset=offset,
            me=next((e for e in items if me is not None and e.user_id == str(me)), None),
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
            "All-time (rating), season or daily (net PnL) board; around=me: the caller's page",
            "leaderboards",
            responses={200: LeaderboardPage},
            path_params=LeaderboardPath,
            query=LeaderboardQuery,
            auth="public",
            errors=(401, 403),
        ),
    )
