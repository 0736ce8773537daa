"""Exact money arithmetic: Decimal quantised to fixed steps, never float."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)
ONE = Decimal(1)
MONEY_STEP = Decimal("0.00000001")  # 1e-8 USDT: every ledger amount is a multiple of this
ENTRY_STEP = Decimal("0.00000001")


def money(value: Decimal) -> Decimal:
    """Round an amount of quote currency to the ledger step (banker's rounding)."""
    return value.quantize(MONEY_STEP, rounding=ROUND_HALF_EVEN)


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """Round towards zero onto a grid (lot sizes: never buy more than paid for)."""
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def floor_price(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def on_grid(value: Decimal, step: Decimal) -> bool:
    return (value % step) == 0


def fmt(value: Decimal | None) -> str | None:
    """Wire form of a Decimal: a plain string with no exponent."""
    if value is None:
        return None
    text = str(value)  # the same as format "f" unless it chose exponent notation
    if "E" in text:
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
