"""How a match was made (ranked queue, casual queue, private invite) and so whether it
is rated: one row per match in `match_options`, written by the lobby before the match's
server is asked for, read by the results worker, the live list and the replay viewer.

A match without a row is ranked: every match made before the table existed, and every
match of the ranked queues (which write no row).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import asyncpg


class MatchKind(StrEnum):
    RANKED = "ranked"  # the solo queues: rated, on the leaderboards
    CASUAL = "casual"  # the casual queues (parties welcome): unrated
    PRIVATE = "private"  # by invite code: unrated, unlisted, watched only by its own

    @property
    def rated(self) -> bool:
        return self is MatchKind.RANKED


async def record(
    conn: asyncpg.Pool | asyncpg.Connection,
    match_id: str,
    kind: MatchKind,
    host_id: str | None = None,
    invited_ids: Iterable[str] = (),
) -> None:
    """Idempotent: a retried formation writes the same row once. `invited_ids`: who a
    private match's host invited by name (they may watch it: `guests`)."""
    await conn.execute(
        "INSERT INTO match_options (match_id, kind, rated, host_id, invited_ids)"
        " VALUES ($1, $2, $3, $4, $5::uuid[]) ON CONFLICT (match_id) DO NOTHING",
        match_id,
        str(kind),
        kind.rated,
        host_id,
        list(dict.fromkeys(invited_ids)),
    )


async def guests(conn: asyncpg.Pool | asyncpg.Connection, match_id: str) -> frozenset[str] | None:
    """Who may watch the match besides its players (live, delayed, or replayed): None
    when anyone may (a ranked or casual match); for a private match, its host and those
    it invited by name."""
    row = await conn.fetchrow(
        "SELECT host_id, invited_ids FROM match_options WHERE match_id = $1 AND kind = $2",
        match_id,
        str(MatchKind.PRIVATE),
    )
    if row is None:
        return None
    hosts = {str(row["host_id"])} if row["host_id"] is not None else set()
    return frozenset({str(u) for u in row["invited_ids"]} | hosts)


async def kinds(
    conn: asyncpg.Pool | asyncpg.Connection, match_ids: Iterable[str]
) -> dict[str, MatchKind]:
    """Every given match's kind (ranked when it has no row)."""
    ids = list(dict.fromkeys(match_ids))
    out = dict.fromkeys(ids, MatchKind.RANKED)
    if not ids:
        return out
    rows = await conn.fetch(
        "SELECT match_id, kind FROM match_options WHERE match_id = ANY($1::text[])", ids
    )
    for row in rows:
        out[row["match_id"]] = MatchKind(row["kind"])
    return out


async def kind(conn: asyncpg.Pool | asyncpg.Connection, match_id: str) -> MatchKind:
    return (await kinds(conn, [match_id]))[match_id]
