"""Builds realistic MatchResult messages and the users they refer to (test helper)."""

from __future__ import annotations

import random
from decimal import Decimal

import asyncpg
from redis.asyncio import Redis

from lobby.accounts.usernames import canonical_username
from matchserver.engine.log import MatchRecord, dumps
from matchserver.engine.match import replay_entries
from matchserver.runner import build_result
from matchserver.simulate import SimulationSpec, simulate
from matchserver.store import MatchStore
from tradearena.contracts.results import Fill, LedgerLine, MatchResult, Standing
from tradearena.modes import default_catalogue

T0 = 1_790_000_000_000


async def make_users(dsn: str, n: int, prefix: str = "user") -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        names = [f"{prefix}{i:04d}" for i in range(1, n + 1)]
        rows = await conn.fetch(
            "INSERT INTO users (username, username_canonical, password_hash)"
            " SELECT u, c, 'x' FROM unnest($1::text[], $2::text[]) AS t(u, c) RETURNING id",
            names,
            [canonical_username(name) for name in names],
        )
    finally:
        await conn.close()
    return [str(r["id"]) for r in rows]


def make_result(
    match_id: str,
    players: list[str],
    seed: int = 0,
    ended_at: int = T0,
    phase: str = "finished",
) -> MatchResult:
    rng = random.Random(seed)
    equities = {p: Decimal(10_000) + Decimal(rng.randint(-3000, 3000)) for p in players}
    order = sorted(players, key=lambda p: (-equities[p], p))
    standings = [
        Standing(
            rank=i + 1,
            player=p,
            equity=equities[p],
            realized_pnl=equities[p] - Decimal(10_000) + Decimal(2),
            fees=Decimal(2),
            trades=1,
            status="finished",
        )
        for i, p in enumerate(order)
    ]
    fills = [
        Fill(
            player=p,
            reason="close",
            side="sell",
            qty=Decimal("0.01"),
            price=Decimal("65000.5"),
            fee=Decimal(2),
            realized_pnl=equities[p] - Decimal(10_000) + Decimal(2),
            loss_capped=False,
            ref=f"{match_id}-{p[:8]}",
            at=ended_at - 1000,
        )
        for p in players
    ]
    ledger = [
        LedgerLine(
            seq=i + 1,
            at=ended_at - 1000,
            debit=f"player:{p}",
            credit="house:fees",
            amount=Decimal(2),
            kind="fee",
            player=p,
            ref=f"{match_id}-{p[:8]}",
        )
        for i, p in enumerate(players)
    ]
    return MatchResult(
        match_id=match_id,
        mode="standard",
        format="blitz",
        symbol="BTCUSDT",
        phase=phase,  # type: ignore[arg-type]
        reason=None,
        created_at=ended_at - 200_000,
        started_at=ended_at - 180_000,
        ended_at=ended_at,
        final_price=Decimal("65000.5"),
        frozen_ms=0,
        players=players,
        standings=standings if phase == "finished" else [],
        fills=fills if phase == "finished" else [],
        ledger=ledger if phase == "finished" else [],
        log_entries=10,
        log_digest="d" * 64,
        ledger_digest="e" * 64,
    )


async def play_and_publish(
    redis: Redis, match_id: str, players: list[str], seed: int = 1, fmt: str = "blitz"
) -> MatchRecord:
    """A real match, played by the engine with scripted players (`simulate`), written to
    Redis by the match server's own store as a match server does (header, log, engine
    result, then the result message published once on the results stream)."""
    record = simulate(
        default_catalogue(),
        SimulationSpec(
            players=len(players),
            seed=seed,
            match_id=match_id,
            format=fmt,
            player_ids=tuple(players),
        ),
    )
    assert record.result is not None
    match, mismatches = replay_entries(
        record.header, record.entries, until=record.result["ended_at"]
    )
    assert not mismatches and match.result() == record.result
    store = MatchStore(redis, match_id)
    await store.claim_header(record.header)
    await store.append(record.entries, expected=0)
    await store.save_summary(dumps(record.result))
    assert await store.publish_result(build_result(match, fmt, "BTCUSDT").model_dump_json())
    return record
