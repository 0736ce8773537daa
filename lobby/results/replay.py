"""Load a finished match's replay: the stored result (PostgreSQL), the match's record
(Redis while its keys live, else the `match_archive` row), replayed and checked.

The record is read with the archive's own readers (`archive.source.read_match` for
Redis, `archive.db.load` and `contracts.archive.decode` for PostgreSQL); only the log
entries the stored result counts are replayed, and they must have its digest. The
replay (`replay_view.replay`, the engine's verification) runs in a thread: it is
CPU work of a fraction of a second for a 30-minute match.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from lobby import match_options
from lobby.http.problems import problem
from lobby.results import replay_view
from lobby.results.archive import db as archive_db
from lobby.results.archive.source import read_match
from matchserver.engine.log import LogEntry, MatchRecord, digest
from tradearena.contracts.archive import ArchiveError, decode
from tradearena.redisconn import AnyRedis

Row = Mapping[str, Any]

MATCH_SQL = """
SELECT m.id, m.mode, m.format, m.symbol, m.phase, m.final_price, m.log_entries,
       m.log_digest, m.ledger_digest, r.match_id IS NOT NULL AS stored
FROM matches m LEFT JOIN match_results r ON r.match_id = m.id
WHERE m.id = $1
"""
PLAYERS_SQL = """
SELECT mp.user_id, u.username, mp.status, mp.rank, mp.equity, mp.realized_pnl, mp.fees,
       mp.trades
FROM match_players mp JOIN users u ON u.id = mp.user_id
WHERE mp.match_id = $1 ORDER BY mp.rank NULLS LAST, u.username
"""
MAX_DIFFERENCES = 20  # lines of a mismatch shown in the problem


@dataclass(frozen=True)
class StoredMatch:
    match: Row
    players: Sequence[Row]
    kind: match_options.MatchKind


async def stored(pool: asyncpg.Pool, match_id: str, user_id: str) -> StoredMatch:
    """The stored match, if `user_id` may watch it: `match_not_found` 404,
    `private_match` 403 (a private match, to anyone but its players, host and invitees),
    `match_not_finished` 409 (no stored result yet)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        match = await conn.fetchrow(MATCH_SQL, match_id)
        if match is None:
            raise problem(404, "match_not_found", "no such match")
        players = await conn.fetch(PLAYERS_SQL, match_id)
        kind = await match_options.kind(conn, match_id)
        guests = await match_options.guests(conn, match_id)
    if (
        guests is not None
        and uuid.UUID(user_id) not in {p["user_id"] for p in players}
        and user_id not in guests
    ):
        raise problem(
            403, "private_match", "only its players and invitees may watch a private match"
        )
    if not match["stored"]:
        raise problem(409, "match_not_finished", "the match has no stored result yet")
    return StoredMatch(match, players, kind)


async def record(pool: asyncpg.Pool, redis: AnyRedis, match: Row) -> MatchRecord:
    """The match's header, the log entries its stored result counts and its engine
    result: from Redis, else from the archive; `replay_unavailable` 410 when neither has
    it, `replay_mismatch` 409 when the log is not the one the result was computed from."""
    match_id, count = str(match["id"]), int(match["log_entries"] or 0)
    try:
        found = await read_match(redis, match_id)
        if found is not None and len(found[1]) >= count:
            header, entries, result = found
            rec = MatchRecord(header, [LogEntry.from_wire(e) for e in entries[:count]], result)
        else:
            async with pool.acquire() as conn:
                row = await archive_db.load(conn, match_id)
            if row is None:
                raise problem(410, "replay_unavailable", "the match's log is no longer kept")
            rec = MatchRecord.parse(decode(row.data, row.codec, row.format))
    except (ArchiveError, ValueError, KeyError, TypeError) as exc:
        raise problem(409, "replay_mismatch", f"the match's record is unreadable: {exc}") from None
    if rec.header.get("match_id") != match_id:
        raise problem(409, "replay_mismatch", "the record is of another match")
    if len(rec.entries) != count or digest(rec.entries) != match["log_digest"]:
        raise problem(
            409, "replay_mismatch", "the log is not the one the stored result was computed from"
        )
    return rec


def _check(replayed: replay_view.Replayed, stored_match: StoredMatch) -> None:
    differences = list(replayed.verification.differences)
    if not differences:
        differences = replay_view.stored_differences(
            replayed.verification.result, stored_match.match, stored_match.players
        )
    if differences:
        raise problem(
            409,
            "replay_mismatch",
            "replaying the log does not reproduce the stored result",
            differences=differences[:MAX_DIFFERENCES],
        )


async def load(pool: asyncpg.Pool, redis: AnyRedis, stored_match: StoredMatch) -> dict[str, Any]:
    """The verified replay document (`replay_view.document`)."""
    rec = await record(pool, redis, stored_match.match)
    replayed = await asyncio.to_thread(replay_view.replay, rec)
    _check(replayed, stored_match)
    return replay_view.document(
        stored_match.match, stored_match.players, replayed, str(stored_match.kind)
    )
