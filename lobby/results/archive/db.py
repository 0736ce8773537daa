"""The `match_archive` rows (migration 0102): what to archive, insert once, read back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from tradearena.contracts.archive import Archive


@dataclass(frozen=True)
class StoredMatch:
    """What the stored result says of a match's log, and how far its archive got."""

    match_id: str
    log_entries: int
    log_digest: str
    archived: bool
    redis_expire_at: datetime | None


@dataclass(frozen=True)
class ArchiveRow:
    match_id: str
    format: int
    codec: str
    data: bytes
    raw_bytes: int
    compressed_bytes: int
    log_digest: str
    created_at: datetime


async def stored_match(conn: asyncpg.Connection, match_id: str) -> StoredMatch | None:
    """None unless the match's result is stored (only stored results are archived)."""
    row = await conn.fetchrow(
        """
        SELECT m.id, m.log_entries, m.log_digest, a.match_id IS NOT NULL AS archived,
               a.redis_expire_at
        FROM match_results r
        JOIN matches m ON m.id = r.match_id
        LEFT JOIN match_archive a ON a.match_id = r.match_id
        WHERE r.match_id = $1
        """,
        match_id,
    )
    if row is None:
        return None
    return StoredMatch(
        row["id"],
        int(row["log_entries"] or 0),
        str(row["log_digest"] or ""),
        bool(row["archived"]),
        row["redis_expire_at"],
    )


async def insert(conn: asyncpg.Connection, archive: Archive) -> bool:
    """The archive row, once: False when the match was archived already."""
    inserted = await conn.fetchval(
        """
        INSERT INTO match_archive (match_id, format, codec, data, raw_bytes,
                                   compressed_bytes, log_entries, log_digest)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (match_id) DO NOTHING RETURNING match_id
        """,
        archive.match_id,
        archive.format,
        str(archive.codec),
        archive.data,
        archive.raw_bytes,
        archive.compressed_bytes,
        archive.log_entries,
        archive.log_digest,
    )
    return inserted is not None


async def mark_expiring(conn: asyncpg.Connection, match_id: str, ttl_s: int) -> None:
    await conn.execute(
        "UPDATE match_archive SET redis_expire_at = now() + make_interval(secs => $2)"
        " WHERE match_id = $1 AND redis_expire_at IS NULL",
        match_id,
        float(ttl_s),
    )


async def unfinished(
    conn: asyncpg.Connection, window_s: float, after: datetime | None, limit: int
) -> list[tuple[str, datetime]]:
    """Stored results of the last `window_s`, stored after `after` (a keyset cursor, so
    matches that keep failing never starve the others), not archived yet or archived
    but whose Redis keys have no expiry yet, oldest first, with their `stored_at`."""
    rows = await conn.fetch(
        """
        SELECT r.match_id, r.stored_at FROM match_results r
        LEFT JOIN match_archive a ON a.match_id = r.match_id
        WHERE r.stored_at > GREATEST(now() - make_interval(secs => $1), $2)
          AND (a.match_id IS NULL OR a.redis_expire_at IS NULL)
        ORDER BY r.stored_at
        LIMIT $3
        """,
        float(window_s),
        after,
        limit,
    )
    return [(str(row["match_id"]), row["stored_at"]) for row in rows]


async def load(conn: asyncpg.Connection, match_id: str) -> ArchiveRow | None:
    row = await conn.fetchrow(
        "SELECT match_id, format, codec, data, raw_bytes, compressed_bytes, log_digest,"
        " created_at FROM match_archive WHERE match_id = $1",
        match_id,
    )
    if row is None:
        return None
    return ArchiveRow(
        row["match_id"],
        int(row["format"]),
        str(row["codec"]),
        bytes(row["data"]),
        int(row["raw_bytes"]),
        int(row["compressed_bytes"]),
        str(row["log_digest"]),
        row["created_at"],
    )
