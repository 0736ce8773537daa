"""A spectator's delayed view of a live match, from a shadow engine (pure).

The shadow is a second `Match` built from the live match's header and fed only the
live log entries at least `delay_ms` old, then moved on in time to `now - delay_ms`:
what it holds is exactly the live match as it was `delay_ms` ago (prices, positions,
stops, balances, board, candles, phase), and nothing newer. A Peek's live price never
enters it (a Peek is an action whose price is not logged); an official price is in it
only once it was official `delay_ms` ago.

The shadow never moves past the live match's own clock: a live entry is always logged
at or after that clock, so every entry the shadow has not taken yet is newer than the
shadow (the log is applied in order, never back in time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import ledger as acct
from .log import LogEntry
from .match import Match
from .money import fmt

VIEW_ROWS = 20  # players in a view, in board order


class DelayedView:
    def __init__(self, header: Mapping[str, Any], delay_ms: int, symbol: str) -> None:
        if delay_ms <= 0:
            raise ValueError("a spectator's delay must be positive")
        self.shadow = Match.from_header(header)
        self.delay_ms = delay_ms
        self.symbol = symbol
        self.fed = 0  # live log entries applied to the shadow
        # The view's time: never later than now - delay_ms (and never going back).
        self.at: int | None = None

    def catch_up(
        self, log: Sequence[LogEntry], now: int, live_now: int, limit: int | None = None
    ) -> bool:
        """Bring the shadow to `now - delay_ms` (no further than the live clock
        `live_now`), applying at most `limit` entries: True once there (the view's time
        `at` is then that time), False when entries are left for another call."""
        at = min(now - self.delay_ms, live_now)
        shadow = self.shadow
        fed = self.fed
        stop = len(log) if limit is None else min(len(log), fed + limit)
        while fed < stop and log[fed].at <= at:
            shadow.apply_entry(log[fed])
            fed += 1
        self.fed = fed
        if fed < len(log) and log[fed].at <= at:
            return False  # more to apply first
        if at > shadow.now:
            shadow.advance(at)
        if self.at is None or at > self.at:
            self.at = at
        return True

    @property
    def over(self) -> bool:
        return self.shadow.phase.over

    def view(self, spectators: int, rows: int = VIEW_ROWS) -> dict[str, Any]:
        """The spectator view at the view's time (docs/matchserver.md, "Spectators")."""
        at = self.shadow.now if self.at is None else self.at
        return spectator_view(self.shadow, at, self.delay_ms, self.symbol, spectators, rows)

    def sync(self, spectators: int) -> dict[str, Any]:
        """The view plus the recent official candles up to its time (like a player's sync)."""
        return {**self.view(spectators), "candles": self.shadow.candles.to_wire()}


def spectator_view(
    m: Match, at: int, delay_ms: int, symbol: str, spectators: int, rows: int = VIEW_ROWS
) -> dict[str, Any]:
    """What a spectator sees of match `m` (as it was at `at`): the board's first `rows`
    players with their positions, stops and balances, the official price and candle."""
    price = m.official
    players = []
    for rank, (p, equity) in enumerate(m.standings()[:rows], 1):
        players.append(
            {
                "rank": rank,
                "player": p.id,
                "equity": fmt(equity),
                "balance": fmt(m.ledger.balance(acct.cash(p.id))),
                "status": p.status(),
                "trades": p.trades,
                "position": p.position.to_wire(price) if p.position is not None else None,
            }
        )
    return {
        "match_id": m.match_id,
        "mode": m.mode,
        "symbol": symbol,
        "delay_ms": delay_ms,
        "at": at,
        "phase": str(m.phase),
        "started_at": m.started_at,
        "end_at": m.end_at,
        "official_price": fmt(price),
        "frozen": m.frozen,
        "spectators": spectators,
        "players": players,
        "candle": m.candles.newest(),
    }
