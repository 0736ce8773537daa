"""Match history (a player's matches, newest first) and match detail (`match_view`).

The history query walks the index `match_players_history (user_id, joined_at
DESC, match_id DESC)` from a keyset cursor: no sort and no offset, so a page
costs the same at the first match and at the ten-thousandth.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

import asyncpg
from aiohttp import web

from lobby import match_options
from lobby.http.api import Operation, path_of, principal, query_of, reply
from lobby.http.problems import problem
from lobby.http.schemas import (
    HistoryItem,
    HistoryPage,
    HistoryQuery,
    MatchDetail,
    MatchPath,
)
from lobby.results import match_view
from lobby.state import API, DB

HISTORY_SQL = """
SELECT m.id AS match_id, m.mode, m.format, m.symbol, m.phase, m.created_at, m.started_at,
       m.ended_at, mp.joined_at, mp.status, mp.rank, mp.equity, mp.realized_pnl, mp.fees,
       mp.trades
FROM match_players mp
JOIN matches m ON m.id = mp.match_id
WHERE mp.user_id = $1
  AND ($2::timestamptz IS NULL OR (mp.joined_at, mp.match_id) < ($2, $3))
ORDER BY mp.joined_at DESC, mp.match_id DESC
LIMIT $4
"""


def encode_cursor(joined_at: datetime, match_id: str) -> str:
    raw = json.dumps([joined_at.isoformat(), match_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, match_id = json.loads(raw)
        return datetime.fromisoformat(when), str(match_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise problem(400, "invalid_cursor", "the cursor is not one this API returned") from None


async def fetch_history(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: uuid.UUID, limit: int, cursor: str | None
) -> HistoryPage:
    after: tuple[datetime | None, str | None] = (None, None)
    if cursor:
        after = decode_cursor(cursor)
    rows = await conn.fetch(HISTORY_SQL, user_id, after[0], after[1], limit + 1)
    kinds = await match_options.kinds(conn, (r["match_id"] for r in rows[:limit]))
    items = [
        HistoryItem(
            match_id=r["match_id"],
            mode=r["mode"],
            format=r["format"],
            symbol=r["symbol"],
            phase=r["phase"],
            created_at=r["created_at"],
            started_at=r["started_at"],
            ended_at=r["ended_at"],
            joined_at=r["joined_at"],
            status=r["status"],
            rank=r["rank"],
            equity=match_view.dec(r["equity"]),
            realized_pnl=match_view.dec(r["realized_pnl"]),
            fees=match_view.dec(r["fees"]),
            trades=r["trades"],
            kind=str(kinds[r["match_id"]]),
        )
        for r in rows[:limit]
    ]
    last = items[-1] if len(rows) > limit and items else None
    return HistoryPage(
        items=items, next_cursor=encode_cursor(last.joined_at, last.match_id) if last else None
    )


async def history(request: web.Request) -> web.Response:
    query = query_of(request, HistoryQuery)
    user_id = uuid.UUID(principal(request).user_id)
    return reply(await fetch_history(request.app[DB], user_id, query.limit, query.cursor))


MATCH_SQL = "SELECT * FROM matches WHERE id = $1"
PLAYERS_SQL = """
SELECT mp.*, u.username FROM match_players mp JOIN users u ON u.id = mp.user_id
WHERE mp.match_id = $1 ORDER BY mp.rank NULLS LAST, u.username
"""
FILLS_SQL = """
SELECT t.*, u.username FROM trades t JOIN users u ON u.id = t.user_id
WHERE t.match_id = $1 ORDER BY t.at, t.id
"""
LEDGER_SQL = "SELECT * FROM ledger_lines WHERE match_id = $1 ORDER BY seq"


async def match_detail(request: web.Request) -> web.Response:
    match_id = path_of(request, MatchPath).match_id
    async with (
        request.app[DB].acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        m = await conn.fetchrow(MATCH_SQL, match_id)
        if m is None:
            raise problem(404, "match_not_found", "no such match")
        players = await conn.fetch(PLAYERS_SQL, match_id)
        fills = await conn.fetch(FILLS_SQL, match_id)
        ledger = await conn.fetch(LEDGER_SQL, match_id)
        kind = await match_options.kind(conn, match_id)
    return reply(match_view.match_detail({**m, "kind": str(kind)}, players, fills, ledger))


def add_routes(app: web.Application) -> None:
    api = app[API]
    api.add(
        app,
        Operation(
            "GET",
            "/api/v1/matches",
            history,
            "matchHistory",
            "The caller's matches, newest first (keyset pages)",
            "matches",
            responses={200: HistoryPage},
            query=HistoryQuery,
            auth="user",
        ),
    )
    api.add(
        app,
        Operation(
            "GET",
            "/api/v1/matches/{match_id}",
            match_detail,
            "matchDetail",
            "One match: its players' results, fills, ledger lines and final balances",
            "matches",
            responses={200: MatchDetail},
            path_params=MatchPath,
            auth="user",
            errors=(404,),
        ),
    )
