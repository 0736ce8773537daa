"""Candles from a symbol's ticks: a pure aggregator, no I/O.

`advance(state, tick)` takes one tick in stream order and returns the new state and the
candles that tick closed (at most one per interval). A candle is closed by the first
tick at or after its close time (`t + interval`), never by the clock: a quiet feed
leaves its last candle open, and an interval without a tick has no candle (a gap, not
a flat candle). A tick whose identity is not after the last one (out of order, or a
duplicate) changes nothing, as the feed stream refuses it too. Prices are kept as the
exact decimals of the ticks: no arithmetic, only comparisons.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from tradearena.contracts.candles import INTERVAL_MS, Candle, CandleInterval
from tradearena.contracts.feed import FeedTick

INTERVALS = tuple(CandleInterval)


@dataclass(frozen=True, slots=True)
class CandleState:
    """The open candle of each interval and the identity of the last tick taken."""

    building: tuple[Candle | None, ...] = (None,) * len(INTERVALS)
    last_key: tuple[int, int] | None = None


def open_time(event_ms: int, interval: CandleInterval) -> int:
    step = INTERVAL_MS[interval]
    return event_ms - event_ms % step


def _extend(candle: Candle, price: Decimal) -> Candle:
    return replace(
        candle, h=max(candle.h, price), low=min(candle.low, price), c=price, n=candle.n + 1
    )


def advance(
    state: CandleState, tick: FeedTick
) -> tuple[CandleState, list[tuple[CandleInterval, Candle]]]:
    """The state after `tick`, and the candles it closed (interval, candle)."""
    key = tick.key()
    if state.last_key is not None and key <= state.last_key:
        return state, []
    closed: list[tuple[CandleInterval, Candle]] = []
    building: list[Candle | None] = []
    for interval, current in zip(INTERVALS, state.building, strict=True):
        t = open_time(tick.event_ms, interval)
        if current is not None and current.t == t:
            building.append(_extend(current, tick.price))
            continue
        if current is not None:
            closed.append((interval, current))
        p = tick.price
        building.append(Candle(t=t, o=p, h=p, low=p, c=p, n=1))
    return CandleState(tuple(building), key), closed


def aggregate(
    ticks: Iterable[FeedTick], state: CandleState | None = None
) -> tuple[CandleState, list[tuple[CandleInterval, Candle]]]:
    """Every candle a sequence of ticks closes, in order, and the state after them."""
    state = state or CandleState()
    out: list[tuple[CandleInterval, Candle]] = []
    for tick in ticks:
        state, closed = advance(state, tick)
        out.extend(closed)
    return state, out
