"""Candles (open/high/low/close of prices over a fixed interval): the wire form shared
by the relay's candle store, the lobby's candles API and the match server's `sync`.

Wire form, one JSON object per candle:
    {"t": <open time, epoch ms>, "o": "<decimal>", "h": "<decimal>", "l": "<decimal>",
     "c": "<decimal>", "n": <prices in it>}
Prices are decimal strings without exponent (as every price on the wire).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any


class CandleInterval(StrEnum):
    S1 = "1s"
    M1 = "1m"


INTERVAL_MS = {CandleInterval.S1: 1000, CandleInterval.M1: 60000}


def _price(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True, slots=True)
class Candle:
    t: int  # open time, epoch ms (a multiple of the interval)
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 (the wire's own name)
    c: Decimal
    n: int  # how many prices it holds

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "o": _price(self.o),
            "h": _price(self.h),
            "l": _price(self.l),
            "c": _price(self.c),
            "n": self.n,
        }

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Candle:
        return cls(
            int(raw["t"]),
            Decimal(raw["o"]),
            Decimal(raw["h"]),
            Decimal(raw["l"]),
            Decimal(raw["c"]),
            int(raw["n"]),
        )
