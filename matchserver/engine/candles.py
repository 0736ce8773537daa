"""The match's recent official candles: what a (re)connecting client's chart starts from.

Fed only by official prices (never by the live price a Peek reveals), in the order the
engine makes them official, so the candles reveal nothing a client watching the `tick`
events would not have seen. The newest candle may still be forming: it holds the
official prices of its interval so far, no later ones.

Bounded: the candles of the last `keep` intervals up to the newest official price
(900 of 1 s: 15 minutes). The engine rebuilds them on restore from the logged prices
(`official_prices`), so a restarted server sends the same candles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from tradearena.contracts.candles import INTERVAL_MS, Candle, CandleInterval

from .log import PRICE, LogEntry
from .money import fmt

INTERVAL = CandleInterval.S1
KEEP = 900  # 15 minutes of 1 s candles


class OfficialCandles:
    """Closed candles in a bounded deque, already in wire form (a closed candle never
    changes: a `sync` sends them as they are, and they take no more memory than Candle
    objects with their Decimals); the forming one in plain fields, updated in place."""

    __slots__ = ("_c", "_closed", "_h", "_l", "_n", "_o", "_t", "interval", "interval_ms", "keep")

    def __init__(self, interval: CandleInterval = INTERVAL, keep: int = KEEP) -> None:
        if keep <= 0:
            raise ValueError("keep must be positive")
        self.interval = interval
        self.interval_ms = INTERVAL_MS[interval]
        self.keep = keep
        self._closed: deque[dict[str, Any]] = deque(maxlen=keep - 1)
        self._t: int | None = None  # open time of the forming candle
        self._o = self._h = self._l = self._c = Decimal(0)
        self._n = 0

    def __len__(self) -> int:
        return len(self._closed) + (self._t is not None)

    def add(self, at: int, price: Decimal) -> None:
        """An official price at engine time `at` (never earlier than the one before)."""
        start = at - at % self.interval_ms
        if self._t is not None and start <= self._t:
            if price > self._h:
                self._h = price
            elif price < self._l:
                self._l = price
            self._c = price
            self._n += 1
            return
        if self._t is not None:
            closed = self._closed
            closed.append(self._forming())
            horizon = self.window_start(at)
            while closed and closed[0]["t"] < horizon:
                closed.popleft()
        self._t = start
        self._o = self._h = self._l = self._c = price
        self._n = 1

    def window_start(self, at: int) -> int:
        """The oldest open time kept once the newest official price is at `at`."""
        return at - at % self.interval_ms - (self.keep - 1) * self.interval_ms

    def _forming(self) -> dict[str, Any]:
        o = fmt(self._o)
        c = o if self._c == self._o else fmt(self._c)
        h = o if self._h == self._o else c if self._h == self._c else fmt(self._h)
        low = o if self._l == self._o else c if self._l == self._c else fmt(self._l)
        return {"t": self._t, "o": o, "h": h, "l": low, "c": c, "n": self._n}

    def newest(self) -> dict[str, Any] | None:
        """The newest candle in wire form (the forming one); None before any price."""
        return self._forming() if self._t is not None else None

    def wire_items(self) -> list[dict[str, Any]]:
        """Ascending by open time: the closed candles, then the forming one (wire form;
        the closed ones are shared, never to be changed)."""
        out = list(self._closed)
        if self._t is not None:
            out.append(self._forming())
        return out

    def items(self) -> list[Candle]:
        return [parse(raw) for raw in self.wire_items()]

    def to_wire(self) -> dict[str, Any]:
        return {"interval": str(self.interval), "items": self.wire_items()}


def parse(raw: Mapping[str, Any]) -> Candle:
    """A candle from its wire form."""
    return Candle(
        int(raw["t"]),
        Decimal(raw["o"]),
        Decimal(raw["h"]),
        Decimal(raw["l"]),
        Decimal(raw["c"]),
        int(raw["n"]),
    )


def official_prices(
    entries: Iterable[LogEntry], delay_ms: int, pending: int, since: int | None = None
) -> Iterator[tuple[int, Decimal]]:
    """The official prices the logged feed prices became: each `delay_ms` after it was
    logged, in log order, except the newest `pending` (still in the delay line); none
    official before `since`."""
    prices = [e for e in entries if e.kind == PRICE]
    for entry in prices[: len(prices) - pending]:
        at = entry.at + delay_ms
        if since is not None and at < since:
            continue
        assert entry.data is not None
        yield at, Decimal(entry.data["price"])
