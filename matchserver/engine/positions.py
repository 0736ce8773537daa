"""Isolated-margin position arithmetic, as pure functions over one position."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from .money import ZERO, ceil_to, floor_price, fmt, money

LONG = 1
SHORT = -1


def side_name(side: int) -> str:
    return "long" if side == LONG else "short"


@dataclass(slots=True)
class Position:
    player: str
    side: int  # LONG or SHORT
    qty: Decimal
    entry: Decimal
    margin: Decimal
    leverage: Decimal  # effective: notional at entry / margin
    liquidation: Decimal  # 0 means "cannot be liquidated" (1x long)
    stop_loss: Decimal | None
    take_profit: Decimal | None
    opened_at: int
    version: int = 0  # bumped on every change; keys the trigger book entries

    def notional(self, price: Decimal) -> Decimal:
        return self.qty * price

    def unrealized(self, price: Decimal) -> Decimal:
        """PnL if closed now, before fees, with the loss capped at the margin."""
        return max(money(self.qty * (price - self.entry) * self.side), -self.margin)

    def to_wire(self, price: Decimal | None) -> dict[str, Any]:
        return {
            "side": side_name(self.side),
            "qty": fmt(self.qty),
            "entry": fmt(self.entry),
            "margin": fmt(self.margin),
            "leverage": fmt(self.leverage),
            "liquidation": fmt(self.liquidation) if self.liquidation > 0 else None,
            "stop_loss": fmt(self.stop_loss),
            "take_profit": fmt(self.take_profit),
            "unrealized_pnl": fmt(self.unrealized(price)) if price is not None else None,
            "opened_at": self.opened_at,
        }


def liquidation_price(
    side: int, entry: Decimal, qty: Decimal, margin: Decimal, mmr: Decimal, step: Decimal
) -> Decimal:
    """Price where the position's equity falls to the maintenance margin.

    Long:  margin + qty*(P - entry) = mmr*qty*P  =>  P = (entry - margin/qty) / (1 - mmr)
    Short: margin + qty*(entry - P) = mmr*qty*P  =>  P = (entry + margin/qty) / (1 + mmr)
    Rounded onto the price grid towards the entry, so it fires no later than exact.
    """
    per_unit = margin / qty
    if side == LONG:
        raw = (entry - per_unit) / (1 - mmr)
        return ceil_to(raw, step) if raw > 0 else ZERO
    return floor_price((entry + per_unit) / (1 + mmr), step)


class CloseAmounts(NamedTuple):
    """The money moved by closing `qty` of a position at `price` (immutable)."""

    margin_released: Decimal
    pnl: Decimal  # realised, after the cap
    fee: Decimal  # charged, after the cap
    capped: bool  # the loss hit the margin cap

    @property
    def returned(self) -> Decimal:
        return self.margin_released + self.pnl - self.fee


def close_amounts(pos: Position, qty: Decimal, price: Decimal, fee_rate: Decimal) -> CloseAmounts:
    """Isolated margin: a close can never take more than the margin it releases.

    The loss is capped first, then the fee is taken from what is left, so the
    player's free balance can only grow by `returned >= 0`.
    """
    released = pos.margin if qty == pos.qty else money(pos.margin * qty / pos.qty)
    raw_pnl = money(qty * (price - pos.entry) * pos.side)
    raw_fee = money(qty * price * fee_rate)
    pnl = max(raw_pnl, -released)
    fee = min(raw_fee, released + pnl)
    return CloseAmounts(released, pnl, fee, capped=(pnl != raw_pnl or fee != raw_fee))
