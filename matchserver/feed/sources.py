"""One small async interface for every price source, and the two local ones.

A source is anything with `ticks()` yielding `FeedTick`s: the Binance client
(`binance.py`), the relay consumer (`relay_source.py`), archive replay and synthetic
prices (here). The match server and the feed relay only see `PriceSource`, so
a test or `up` swaps Binance for synthetic prices with one setting.

Every tick carries an identity (`event_ms`, `seq`) that is strictly increasing
within a source and the same whichever process produced it: the feed relay
uses it as the Redis stream ID, which is what makes a duplicate impossible.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Protocol

from matchserver.feed.archive import (
    KLINE_COLUMNS,
    TRADE_COLUMNS,
    PricePoint,
    data_rows,
    kline_path,
    read_klines,
    read_trades,
)
from matchserver.feed.synthetic import SyntheticPrices
from tradearena.contracts.feed import FeedTick as FeedTick  # noqa: PLC0414 - the contract tick, re-exported

Clock = Callable[[], int]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class SourceStats:
    """Counters a source keeps about its upstream; the relay exports them as metrics."""

    reconnects: int = 0
    malformed: int = 0
    stale_events: int = 0
    stale: bool = False
    connected: bool = False
    breaker_open: bool = False
    last_tick_recv_ms: int | None = None


class PriceSource(Protocol):
    name: str
    stats: SourceStats

    def ticks(self) -> AsyncGenerator[FeedTick, None]: ...


async def sleep_until(clock: Clock, due_ms: int) -> None:
    delay = due_ms - clock()
    if delay > 0:
        await asyncio.sleep(delay / 1000)


# --------------------------------------------------------------------- synthetic
@dataclass
class SyntheticSource:
    """Seeded prices on a wall-clock grid: tick k is due at k x interval.

    The grid makes the tick identity (`event_ms = k x interval`, `seq = k`) the
    same in every relay replica, and `resume_from` continues the walk from the
    last published price so a failover does not jump. After a stall (a paused
    process) longer than `max_lag_ms`, missed slots are skipped rather than burst
    out.
    """

    symbol: str
    seed: int = 1
    interval_ms: int = 1000
    start_price: Decimal = Decimal("100000")
    resume_from: FeedTick | None = None
    max_lag_ms: int = 1000
    clock: Clock = wall_ms
    name: str = "synthetic"
    stats: SourceStats = field(default_factory=SourceStats)

    async def ticks(self) -> AsyncGenerator[FeedTick, None]:
        interval = self.interval_ms
        slot = self.clock() // interval + 1
        if self.resume_from is not None:
            slot = max(slot, self.resume_from.seq + 1)
        start = self.resume_from.price if self.resume_from is not None else self.start_price
        prices = SyntheticPrices(seed=hash((self.seed, slot)), start=start, step_ms=interval)
        while True:
            await sleep_until(self.clock, slot * interval)
            now = self.clock()
            if now - slot * interval > max(self.max_lag_ms, interval):
                slot = now // interval  # stalled: skip the missed slots
            tick = FeedTick(self.symbol, prices.next_price(), slot * interval, now, self.name, slot)
            self.stats.last_tick_recv_ms = now
            yield tick
            slot += 1


async def synthetic_with_history(
    symbol: str, seed: int, interval_ms: int, history_ms: int, clock: Clock
) -> AsyncGenerator[FeedTick, None]:
    """In-process prices for a match server without a relay: `history_ms` of history at
    once, then one tick per interval on the wall-clock grid, identified by its slot like
    the relay's."""
    prices = SyntheticPrices(seed=seed, step_ms=interval_ms)
    slot = clock() // interval_ms
    for k in range(slot - history_ms // interval_ms - 1, slot + 1):
        yield FeedTick(
            symbol, prices.next_price(), k * interval_ms, k * interval_ms, "synthetic", k
        )
    while True:
        slot += 1
        await sleep_until(clock, slot * interval_ms)
        yield FeedTick(symbol, prices.next_price(), slot * interval_ms, clock(), "synthetic", slot)


# --------------------------------------------------------------------- replay
def archive_kind(path: Path) -> str:
    """`klines` or `trades`, from the column count of the first data row."""
    with contextlib.closing(data_rows(path)) as rows:
        first = next(rows, None)
    if first is None:
        raise ValueError(f"{path}: no data rows")
    number, row = first
    if len(row) == KLINE_COLUMNS:
        return "klines"
    if len(row) in TRADE_COLUMNS:
        return "trades"
    raise ValueError(f"{path}: line {number}: {len(row)} columns is neither klines nor trades")


def check_replay_files(paths: Sequence[Path], speed: int | Fraction | Decimal) -> int:
    """Read the files to their end as a replay will, before anything starts: the number
    of prices, or a ValueError that starts with the file and says the line and reason."""
    if not paths:
        raise ValueError("replay needs at least one archive file")
    for path in paths:
        read = read_klines if archive_kind(path) == "klines" else read_trades
        for _ in read(path):
            pass
    try:
        return sum(1 for _ in replay_points(paths, speed))
    except ValueError as exc:  # across files: order, kinds, speed
        raise ValueError(f"{' + '.join(map(str, paths))}: {exc}") from None


def trade_path(
    trades: Iterable[tuple[int, Decimal]], *, speed: int | Fraction | Decimal = 1
) -> Iterator[PricePoint]:
    """Trades (time, price) on a timeline `speed` times faster; several may share a ms."""
    factor = Fraction(speed)
    if factor <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    origin: int | None = None
    for t, price in trades:
        if origin is None:
            origin = t
        if t < origin:
            raise ValueError(f"trades out of order: {t} before {origin}")
        yield PricePoint(int((t - origin) / factor), price, t)


def replay_points(paths: Sequence[Path], speed: int | Fraction | Decimal) -> Iterator[PricePoint]:
    """Every price of the files, in file order, on one compressed timeline."""
    if not paths:
        raise ValueError("replay needs at least one archive file")
    kinds = {archive_kind(p) for p in paths}
    if len(kinds) != 1:
        raise ValueError(f"replay files mix klines and trades: {sorted(map(str, paths))}")
    if kinds == {"klines"}:
        klines = itertools.chain.from_iterable(read_klines(p) for p in paths)
        return kline_path(klines, speed=speed)
    trades = itertools.chain.from_iterable(read_trades(p) for p in paths)
    return trade_path(((t.time, t.price) for t in trades), speed=speed)


@dataclass
class ReplaySource:
    """Binance public-data CSVs (klines or trades, ms or µs) replayed in real time x speed.

    Tick times are the compressed archive timeline moved to now, so a replayed
    feed looks live to a match; `source_ms` keeps the archive time, and
    `resume_after_source_ms` continues a replay where another process left it.
    """

    symbol: str
    paths: Sequence[Path]
    speed: int | Fraction | Decimal = 60
    resume_after_source_ms: int | None = None
    clock: Clock = wall_ms
    name: str = "replay"
    stats: SourceStats = field(default_factory=SourceStats)

    async def ticks(self) -> AsyncGenerator[FeedTick, None]:
        points = replay_points(self.paths, self.speed)
        if self.resume_after_source_ms is not None:
            after = self.resume_after_source_ms
            points = itertools.dropwhile(lambda p: p.source_at <= after, points)
        start = self.clock()
        first_at: int | None = None
        last_ms = -1
        for seq, point in enumerate(points, 1):
            if first_at is None:
                first_at = point.at
            due = start + point.at - first_at
            await sleep_until(self.clock, due)
            last_ms = max(last_ms, due)
            now = self.clock()
            self.stats.last_tick_recv_ms = now
            yield FeedTick(self.symbol, point.price, last_ms, now, self.name, seq, point.source_at)
