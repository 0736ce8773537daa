"""History for a cold feed: the ticks a source would have published before now.

When a leader starts publishing and the feed stream has no recent tick (a fresh
`tradearena up`, a store that was emptied), the relay can write hours of past
candles at once, and the last `history_ms` of ticks into the feed stream, so a
chart and a new match have history from the first second. Only the local sources
have a past to give:

* synthetic: the same random walk, run from the start price and reversed in time,
  so it ends exactly at the price the live walk starts from;
* replay: the first part of the archive, on the replay's own compressed timeline
  (`speed`), moved to end just before now; the live replay resumes after it. At
  most half of the archive's timeline becomes history, so the replay still plays.

The ticks are pure data here; the publisher writes them (fenced) and the live
source continues from the last one (`resume`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from matchserver.feed.sources import replay_points
from matchserver.feed.synthetic import SyntheticPrices
from tradearena.contracts.feed import FeedTick


def synthetic_history(
    symbol: str, *, seed: int, interval_ms: int, start_price: Decimal, span_ms: int, now_ms: int
) -> list[FeedTick]:
    """Ticks on the synthetic grid over `span_ms` before `now_ms`, the last one (slot
    `now_ms // interval_ms`, at most now) at `start_price`."""
    last_slot = now_ms // interval_ms
    count = max(0, span_ms // interval_ms)
    prices = SyntheticPrices(seed=seed, start=start_price, step_ms=interval_ms)
    walk = [start_price, *itertools.islice(prices, max(0, count - 1))]
    walk.reverse()
    first_slot = last_slot - len(walk) + 1
    return [
        FeedTick(symbol, price, slot * interval_ms, slot * interval_ms, "synthetic", slot)
        for slot, price in zip(itertools.count(first_slot), walk, strict=False)
    ]


def replay_history(
    symbol: str,
    paths: Sequence[Path],
    *,
    speed: int | Fraction | Decimal,
    span_ms: int,
    now_ms: int,
) -> list[FeedTick]:
    """The archive's first `span_ms` of compressed timeline (at most half of it), ending
    before `now_ms`; each tick keeps its archive time (`source_ms`) so the live replay
    resumes after the last one."""
    last_at: int | None = None
    first_at: int | None = None
    for point in replay_points(paths, speed):
        if first_at is None:
            first_at = point.at
        last_at = point.at
    if first_at is None or last_at is None:
        return []
    span = min(span_ms, (last_at - first_at) // 2)
    if span <= 0:
        return []
    origin = now_ms - span  # the first point's wall time
    ticks: list[FeedTick] = []
    last_ms = -1
    for seq, point in enumerate(replay_points(paths, speed)):
        offset = point.at - first_at
        if offset >= span:
            break
        last_ms = max(last_ms, origin + offset)
        ticks.append(
            FeedTick(symbol, point.price, last_ms, last_ms, "replay", seq, point.source_at)
        )
    return ticks
