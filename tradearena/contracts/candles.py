"""Candles of a symbol's feed: the wire form every reader and writer shares.

Writer: the feed relay leader (`matchserver.relay.candles` aggregates, the fenced
publish writes). Readers: the lobby's candles API, the web client's chart, the match
server's `sync`.

Store: the Redis stream `keys.candles(symbol, interval)`, one entry per CLOSED candle,
entry ID `<open time ms>-0` (so Redis itself refuses a second candle with the same open
time), fields `o`, `h`, `l`, `c` (decimal strings) and `n` (ticks).

Wire (JSON): {"t": open ms, "o": "...", "h": "...", "l": "...", "c": "...", "n": ticks}.
A candle is only published or served once closed: a price at or after `t + interval`
was seen (its close time `t + interval` is then in the past of the feed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any


class CandleInterval(StrEnum):
    S1 = "1s"
    M1 = "1m"


INTERVAL_MS = {CandleInterval.S1: 1000, CandleInterval.M1: 60000}


@dataclass(frozen=True, slots=True)
class Candle:
    """Open, high, low, close and tick count of the prices with open <= time < open + interval."""

    t: int  # open time, epoch ms
    o: Decimal
    h: Decimal
    low: Decimal
    c: Decimal
    n: int

    @property
    def stream_id(self) -> str:
        return f"{self.t}-0"

    def close_ms(self, interval: CandleInterval) -> int:
        return self.t + INTERVAL_MS[interval]

    def wire(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "o": str(self.o),
            "h": str(self.h),
            "l": str(self.low),
            "c": str(self.c),
            "n": self.n,
        }


class MalformedCandleError(ValueError):
    """A stream entry that is not a candle."""


def encode_candle(candle: Candle) -> dict[str, str]:
    """The stream fields of a candle (its entry ID is `candle.stream_id`)."""
    return {
        "o": str(candle.o),
        "h": str(candle.h),
        "l": str(candle.low),
        "c": str(candle.c),
        "n": str(candle.n),
    }


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_candle(entry_id: bytes | str, fields: Mapping[Any, Any]) -> Candle:
    """A stream entry back into a candle, as redis-py returns it (bytes or str)."""
    try:
        text = {_text(k): _text(v) for k, v in fields.items()}
        ms, _ = _text(entry_id).split("-")
        return Candle(
            t=int(ms),
            o=Decimal(text["o"]),
            h=Decimal(text["h"]),
            low=Decimal(text["l"]),
            c=Decimal(text["c"]),
            n=int(text["n"]),
        )
    except (KeyError, ValueError, ArithmeticError, InvalidOperation) as exc:
        raise MalformedCandleError(f"entry {_text(entry_id)!r}: {exc!r}") from None
