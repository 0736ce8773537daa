"""One result into PostgreSQL in one transaction, idempotent by match id."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from lobby import match_options
from lobby.results.skill import Skill, rate
from tradearena.contracts.results import MatchResult


class _Duplicate(Exception):  # noqa: N818 - control flow, rolls the transaction back
    pass


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class StoredNotification:
    user_id: str
    kind: str
    payload: dict[str, Any]
    id: int = 0
    created_at: datetime | None = None

    def event(self) -> dict[str, Any]:
        """The `/lobby` `notification` event, as the lobby's notify() sends it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "payload": self.payload,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "read_at": None,
        }


async def store_result(
    conn: asyncpg.Connection,
    result: MatchResult,
    stream_id: str,
    bankroll: Decimal,
) -> list[StoredNotification] | None:
    """Store one result in one transaction; None when it was already stored."""
    try:
        async with conn.transaction():
            return await _store(conn, result, stream_id, bankroll)
    except _Duplicate:
        return None


async def _store(
    conn: asyncpg.Connection, result: MatchResult, stream_id: str, bankroll: Decimal
) -> list[StoredNotification]:
    r = result
    await conn.execute(
        """
        INSERT INTO matches (id, mode, format, symbol, phase, reason, created_at, started_at,
                             ended_at, final_price, frozen_ms, log_entries, log_digest, ledger_digest)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        ON CONFLICT (id) DO UPDATE SET
            mode = EXCLUDED.mode, format = EXCLUDED.format, symbol = EXCLUDED.symbol,
            phase = EXCLUDED.phase, reason = EXCLUDED.reason, started_at = EXCLUDED.started_at,
            ended_at = EXCLUDED.ended_at, final_price = EXCLUDED.final_price,
            frozen_ms = EXCLUDED.frozen_ms, log_entries = EXCLUDED.log_entries,
            log_digest = EXCLUDED.log_digest, ledger_digest = EXCLUDED.ledger_digest
        """,
        r.match_id,
        r.mode,
        r.format,
        r.symbol,
        r.phase,
        r.reason,
        _ts(r.created_at),
        _ts(r.started_at),
        _ts(r.ended_at),
        r.final_price,
        r.frozen_ms,
        r.log_entries,
        r.log_digest,
        r.ledger_digest,
    )
    rated = (
        r.phase == "finished"
        and len(r.standings) >= 2
        and (await match_options.kind(conn, r.match_id)).rated
    )
    marker = await conn.fetchval(
        """
        INSERT INTO match_results (match_id, stream_id, schema_version, bankroll, rated)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (match_id) DO NOTHING RETURNING match_id
        """,
        r.match_id,
        stream_id,
        r.schema_version,
        bankroll,
        rated,
    )
    if marker is None:
        raise _Duplicate(r.match_id)

    standings = {s.player: s for s in r.standings}
    joined = _ts(r.created_at)
    rows = []
    for player in sorted({*r.players, *standings}):
        s = standings.get(player)
        if r.phase == "cancelled":
            status = "cancelled"
        else:
            status = s.status if s is not None else "abandoned"
        rows.append(
            (
                r.match_id,
                uuid.UUID(player),
                joined,
                status,
                s.rank if s else None,
                s.equity if s else None,
                s.realized_pnl if s else None,
                s.fees if s else None,
                s.trades if s else 0,
            )
        )
    await conn.executemany(
        """
        INSERT INTO match_players (match_id, user_id, joined_at, status, rank, equity,
                                   realized_pnl, fees, trades)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (match_id, user_id) DO UPDATE SET
            status = EXCLUDED.status, rank = EXCLUDED.rank, equity = EXCLUDED.equity,
            realized_pnl = EXCLUDED.realized_pnl, fees = EXCLUDED.fees, trades = EXCLUDED.trades
        """,
        rows,
    )
    if r.fills:
        await conn.executemany(
            """
            INSERT INTO trades (match_id, user_id, reason, side, qty, price, fee, realized_pnl,
                                loss_capped, ref, at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            """,
            [
                (
                    r.match_id,
                    uuid.UUID(f.player),
                    f.reason,
                    f.side,
                    f.qty,
                    f.price,
                    f.fee,
                    f.realized_pnl,
                    f.loss_capped,
                    f.ref,
                    _ts(f.at),
                )
                for f in r.fills
            ],
        )
    if r.ledger:
        await conn.executemany(
            """
            INSERT INTO ledger_lines (match_id, seq, at, debit, credit, amount, kind, user_id, ref)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            [
                (
                    r.match_id,
                    ln.seq,
                    _ts(ln.at),
                    ln.debit,
                    ln.credit,
                    ln.amount,
                    ln.kind,
                    _uuid_or_none(ln.player)
                    if ln.player in standings or ln.player in r.players
                    else None,
                    ln.ref,
                )
                for ln in r.ledger
            ],
        )

    after: dict[str, Skill] = {}
    deltas: dict[str, float] = {}
    if rated:
        ids = sorted(standings)
        # Default rows first, then lock in id order: two workers never deadlock on ratings.
        await conn.executemany(
            """
            INSERT INTO ratings (user_id, mu, sigma, ordinal) VALUES ($1, $2, $3, $4)
            ON CONFLICT (user_id) DO NOTHING
            """,
            [(uuid.UUID(p), Skill().mu, Skill().sigma, Skill().ordinal) for p in ids],
        )
        current = await conn.fetch(
            "SELECT user_id, mu, sigma FROM ratings WHERE user_id = ANY($1::uuid[]) "
            "ORDER BY user_id FOR UPDATE",
            [uuid.UUID(p) for p in ids],
        )
        before = {str(row["user_id"]): Skill(row["mu"], row["sigma"]) for row in current}
        after = rate(before, {p: standings[p].rank for p in ids})
        deltas = {p: after[p].ordinal - before[p].ordinal for p in ids}
        await conn.executemany(
            """
            UPDATE ratings SET mu = $2, sigma = $3, ordinal = $4,
                   matches_played = matches_played + 1, updated_at = now()
            WHERE user_id = $1
            """,
            [(uuid.UUID(p), after[p].mu, after[p].sigma, after[p].ordinal) for p in ids],
        )
        await conn.executemany(
            "UPDATE match_players SET rating_delta = $3 WHERE match_id = $1 AND user_id = $2",
            [(r.match_id, uuid.UUID(p), deltas[p]) for p in ids],
        )

    notes = []
    for row in rows:
        player = str(row[1])
        s = standings.get(player)
        payload: dict[str, Any] = {
            "match_id": r.match_id,
            "mode": r.mode,
            "format": r.format,
            "phase": r.phase,
            "reason": r.reason,
            "players": len(rows),
            "rank": s.rank if s else None,
            "equity": str(s.equity) if s else None,
            "pnl": str(s.equity - bankroll) if s else None,
            "status": row[3],
        }
        if player in after:
            payload["rating"] = {
                "mu": after[player].mu,
                "sigma": after[player].sigma,
                "ordinal": after[player].ordinal,
                "delta": deltas[player],
            }
        notes.append(StoredNotification(player, "match_result", payload))
    stored = await conn.fetch(
        """
        INSERT INTO notifications (user_id, kind, payload)
        SELECT t.u, 'match_result', t.p::jsonb
        FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS t(u, p, i) ORDER BY t.i
        RETURNING id, user_id, created_at
        """,
        [uuid.UUID(n.user_id) for n in notes],
        [json.dumps(n.payload) for n in notes],
    )
    by_user = {str(row["user_id"]): row for row in stored}
    return [
        StoredNotification(
            n.user_id, n.kind, n.payload, by_user[n.user_id]["id"], by_user[n.user_id]["created_at"]
        )
        for n in notes
    ]
