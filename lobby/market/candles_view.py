"""The candles API's decisions, pure: the fairness cap, the page window, the page,
and how long it may be cached.

Fairness: a player must never learn a price earlier than any match would show it as
official. The official price of a format is the feed price `price_delay_ms` old, so
the API serves only candles whose close time is at or before `now - cap`, the cap
being the longest `price_delay_ms` of every mode in the catalogue (computed once, at
start). A `to` later than that is clamped.

Window: candles with `from <= t < to` (open times, epoch ms) and `t + interval <=
until`, ascending, at most `limit`. Without `from`: the newest `limit` of them.

Caching: the candle streams only ever grow at their end (entry IDs are open times, a
stream refuses an older one), so a page followed by a stored candle after its window
can never change: it is served with a long max-age. The last page is fresh for a
second only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from tradearena.contracts.candles import INTERVAL_MS, Candle, CandleInterval
from tradearena.modes import Catalogue

FINAL_MAX_AGE_S = 86_400
LIVE_MAX_AGE_S = 1


def fairness_cap_ms(catalogue: Catalogue) -> int:
    """The longest price delay of any mode: no candle closes later than now minus this."""
    return max((m.rules.price_delay_ms for m in catalogue.modes.values()), default=0)


@dataclass(frozen=True)
class Window:
    interval: CandleInterval
    start: int | None  # first open time (inclusive); None: the newest candles
    last_open: int  # last open time that may be served (inclusive), may be < start
    end: int | None  # `to` (exclusive open time), None when not given
    until: int  # the cap: no candle closes after this
    limit: int
    clamped: bool  # the cap, not `to`, ends the window: it grows as time passes

    @property
    def empty(self) -> bool:
        return self.last_open < 0 or (self.start is not None and self.start > self.last_open)


def window(
    interval: CandleInterval,
    start: int | None,
    end: int | None,
    limit: int,
    now_ms: int,
    cap_ms: int,
) -> Window:
    until = now_ms - cap_ms
    capped = until - INTERVAL_MS[interval]
    last_open = capped if end is None else min(capped, end - 1)
    return Window(interval, start, last_open, end, until, limit, last_open == capped)


@dataclass(frozen=True)
class Page:
    candles: list[Candle]
    next_from: int | None
    final: bool  # no candle can ever be added to it


def page(win: Window, found: Sequence[Candle], later_exists: bool) -> Page:
    """The page from the stored candles `found` (ascending, read from `win.start` up to
    `win.last_open`, at most `limit + 1`) and whether a stored candle lies after them
    (after `win.last_open`): then nothing can be added to a window that `to`, not the
    cap, ends (the streams only grow at their end). Candles outside the window (a store that answered more)
    are dropped, so the cap holds whatever the store returned."""
    inside = [
        c
        for c in found
        if (win.start is None or c.t >= win.start)
        and c.t <= win.last_open
        and c.close_ms(win.interval) <= win.until
    ]
    if win.start is None:
        return Page(inside[-win.limit :], None, False)
    more = len(inside) > win.limit
    items = inside[: win.limit]
    next_from = items[-1].t + 1 if more and items else None
    return Page(items, next_from, more or (later_exists and not win.clamped))


def cache_control(final: bool) -> str:
    age = FINAL_MAX_AGE_S if final else LIVE_MAX_AGE_S
    return f"public, max-age={age}"


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches_etag(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or tag in tags
