"""Match history: newest first with keyset pages, served by its index (EXPLAIN on 40,000
rows: an index range scan with no sort; without the index the same query sorts)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from lobby.results.history import HISTORY_SQL
from tradearena.testing.lobby import Client, bearer, register

USERS = 400
MATCHES = 4000
PER_MATCH = 10  # 40,000 match_players rows; each user plays 100 matches


async def _fill(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO users (username, username_canonical, password_hash)"
        " SELECT 'user' || i, 'user' || i, 'x' FROM generate_series(1, $1) AS i",
        USERS,
    )
    await conn.execute(
        "INSERT INTO matches (id, mode, format, phase, created_at, ended_at, final_price)"
        " SELECT 'm' || i, 'standard', 'blitz', 'finished',"
        "  now() - make_interval(mins => i), now() - make_interval(mins => i - 3), 90000.5"
        " FROM generate_series(1, $1) AS i",
        MATCHES,
    )
    await conn.execute(
        """INSERT INTO match_players (match_id, user_id, joined_at, status, rank, equity,
                                      realized_pnl, fees, trades)
           SELECT 'm' || i, u.id, now() - make_interval(mins => i), 'finished', k + 1,
                  10000 + k, k, 0.5, k
           FROM generate_series(1, $1) AS i
           CROSS JOIN generate_series(0, $2 - 1) AS k
           JOIN (SELECT id, row_number() OVER (ORDER BY username) - 1 AS n FROM users) u
             ON u.n = (i * 7 + k) % $3""",
        MATCHES,
        PER_MATCH,
        USERS,
    )
    await conn.execute("ANALYZE")


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


async def _plan(conn: asyncpg.Connection, *args: Any) -> list[dict[str, Any]]:
    raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + HISTORY_SQL, *args)
    doc = json.loads(raw) if isinstance(raw, str) else raw
    return _nodes(doc[0]["Plan"])


async def test_history_query_uses_its_index(lobby_dsn: str) -> None:
    conn = await asyncpg.connect(lobby_dsn)
    try:
        await _fill(conn)
        assert await conn.fetchval("SELECT count(*) FROM match_players") == MATCHES * PER_MATCH
        user_id = await conn.fetchval("SELECT id FROM users WHERE username = 'user1'")
        last = await conn.fetchrow(
            "SELECT joined_at, match_id FROM match_players WHERE user_id = $1"
            " ORDER BY joined_at DESC, match_id DESC OFFSET 40 LIMIT 1",
            user_id,
        )
        for args in ((user_id, None, None, 21), (user_id, last[0], last[1], 21)):
            nodes = await _plan(conn, *args)
            types = [n["Node Type"] for n in nodes]
            scans = [n for n in nodes if n.get("Relation Name") == "match_players"]
            assert [s.get("Index Name") for s in scans] == ["match_players_history"], types
            assert scans[0]["Node Type"] in ("Index Scan", "Index Only Scan")
            assert "Sort" not in types and "Seq Scan" not in types, types
            assert types[0] == "Limit"
        # The cursor is an index condition (the scan starts at the cursor), not a filter.
        cond = scans[0].get("Index Cond", "")
        assert "user_id" in cond and "joined_at" in cond, cond

        # Control: the same query without the index has to read and sort the user's rows.
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("DROP INDEX match_players_history")
            types = [n["Node Type"] for n in await _plan(conn, user_id, None, None, 21)]
            assert "Sort" in types or "Incremental Sort" in types, types
        finally:
            await tx.rollback()
        nodes = await _plan(conn, user_id, None, None, 21)
        assert any(n.get("Index Name") == "match_players_history" for n in nodes)
    finally:
        await conn.close()


async def test_history_pages_newest_first(lobby_client: Client, lobby_dsn: str) -> None:
    me = await register(lobby_client, "zoe")
    other = await register(lobby_client, "zack")
    conn = await asyncpg.connect(lobby_dsn)
    try:
        for i in range(7):
            await conn.execute(
                "INSERT INTO matches (id, mode, format, phase, created_at, final_price)"
                " VALUES ($1, 'duel', 'blitz', 'finished', now() - make_interval(mins => $2),"
                " 101.25)",
                f"h{i}",
                i,
            )
            for who, rank in ((me, 1), (other, 2)):
                await conn.execute(
                    "INSERT INTO match_players (match_id, user_id, joined_at, status, rank,"
                    " equity, realized_pnl, fees, trades)"
                    " VALUES ($1, $2, now() - make_interval(mins => $3), 'finished', $4,"
                    " 10000.12345678, 0.1, 0.04, 3)",
                    f"h{i}",
                    uuid.UUID(who["user"]["id"]),
                    i,
                    rank,
                )
    finally:
        await conn.close()
    auth = bearer(me)
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/v1/matches?limit=3" + (f"&cursor={cursor}" if cursor else "")
        resp = await lobby_client.get(url, headers=auth)
        page = await resp.json()
        assert resp.status == 200
        seen += [item["match_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"h{i}" for i in range(7)]
    resp = await lobby_client.get("/api/v1/matches/h0", headers=auth)
    detail = await resp.json()
    assert detail["final_price"] == "101.25"
    assert [(p["username"], p["rank"], p["equity"]) for p in detail["players"]] == [
        ("zoe", 1, "10000.12345678"),
        ("zack", 2, "10000.12345678"),
    ]
