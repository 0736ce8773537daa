"""The versioned result message a match server publishes when its match ends.

Transport: one entry on the Redis stream `ta:{results}` with a single field
`result` holding this model as JSON. Consumers must reject unknown
`schema_version` values (dead-letter them) rather than guess.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

RESULT_SCHEMA_VERSION: Literal[1] = 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Standing(_Model):
    rank: int
    player: str
    equity: Decimal
    realized_pnl: Decimal
    fees: Decimal
    trades: int
    status: Literal["finished", "abandoned"]


class Fill(_Model):
    player: str
    reason: str  # open | close | reduce | flip | stop_loss | take_profit | liquidation | ...
    side: Literal["buy", "sell"]
    qty: Decimal
    price: Decimal
    fee: Decimal
    realized_pnl: Decimal
    loss_capped: bool
    ref: str
    at: int  # server time, ms since the epoch


class LedgerLine(_Model):
    seq: int
    at: int
    debit: str
    credit: str
    amount: Decimal
    kind: str
    player: str
    ref: str


class MatchResult(_Model):
    schema_version: Literal[1] = RESULT_SCHEMA_VERSION
    match_id: str
    mode: str
    format: str
    symbol: str
    phase: Literal["finished", "cancelled"]
    reason: str | None
    created_at: int
    started_at: int | None
    ended_at: int
    final_price: Decimal | None
    frozen_ms: int
    players: list[str]
    standings: list[Standing]
    fills: list[Fill]
    ledger: list[LedgerLine]
    log_entries: int
    log_digest: str
    ledger_digest: str
