"""Replay (real Binance archives from ../shared/data, trades samples) and synthetic sources."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

import pytest

from matchserver.feed.archive import read_klines
from matchserver.feed.sources import (
    FeedTick,
    PriceSource,
    ReplaySource,
    SyntheticSource,
    archive_kind,
    replay_points,
    trade_path,
    wall_ms,
)
from tradearena.testing.paths import KLINES_DIR

KLINES = KLINES_DIR
DAY1 = KLINES / "BTCUSDT-1m-2025-10-01.csv"
DAY2 = KLINES / "BTCUSDT-1m-2025-10-02.csv"
OCT1_MS = 1759276800000


def jumping_clock() -> Callable[[], int]:
    """Starts at 0, then is far in the future: nothing is ever waited for."""
    values = iter([0])
    return lambda: next(values, 10**13)


async def take(source: PriceSource, n: int | None = None) -> list[FeedTick]:
    out: list[FeedTick] = []
    async with contextlib.aclosing(source.ticks()) as ticks:
        async for tick in ticks:
            out.append(tick)
            if n is not None and len(out) == n:
                break
    return out


def test_archive_kind_tells_klines_from_trades(tmp_path: Path) -> None:
    trades = tmp_path / "BTCUSDT-trades.csv"
    trades.write_text("1,100.5,0.1,10.05,1759276800000123,true,true\n")
    other = tmp_path / "bad.csv"
    other.write_text("1,2,3\n")
    assert archive_kind(DAY1) == "klines"
    assert archive_kind(trades) == "trades"
    with pytest.raises(ValueError, match="neither"):
        archive_kind(other)
    with pytest.raises(ValueError, match="mix"):
        list(replay_points([DAY1, trades], 60))


async def test_two_real_days_replay_in_order_with_archive_times() -> None:
    source = ReplaySource("BTCUSDT", [DAY1, DAY2], speed=60, clock=jumping_clock())
    ticks = await take(source)
    first = next(read_klines(DAY1))
    assert len(ticks) == 2 * 1440 * 4
    assert ticks[0].price == first.open == D("114048.94")
    assert ticks[0].source_ms == OCT1_MS and ticks[0].event_ms == 0
    assert [t.key() for t in ticks] == sorted({t.key() for t in ticks})  # strictly increasing
    # A minute of archive is one second of replay at speed 60; a kline gives 4 prices.
    assert ticks[4].event_ms == 1000 and ticks[4].source_ms == OCT1_MS + 60_000
    assert ticks[-1].source_ms is not None and ticks[-1].source_ms < OCT1_MS + 2 * 86_400_000
    assert {t.source for t in ticks} == {"replay"}


async def test_a_replay_resumes_after_an_archive_time() -> None:
    resume_at = OCT1_MS + 30 * 60_000 + 15_000  # the second price of minute 30
    source = ReplaySource(
        "BTCUSDT", [DAY1], speed=60, resume_after_source_ms=resume_at, clock=jumping_clock()
    )
    ticks = await take(source, 3)
    assert [t.source_ms for t in ticks] == [
        resume_at + 15_000,
        resume_at + 30_000,
        resume_at + 45_000,
    ]
    assert ticks[0].event_ms == 0  # the resumed replay starts now


async def test_the_speed_factor_paces_the_replay_in_real_time() -> None:
    source = ReplaySource("BTCUSDT", [DAY1], speed=3000)  # a price every 5 ms
    started = time.monotonic()
    ticks = await take(source, 41)
    elapsed = time.monotonic() - started
    assert {b.event_ms - a.event_ms for a, b in itertools.pairwise(ticks)} == {5}
    assert elapsed >= 0.19  # 40 intervals of 5 ms cannot be faster
    assert elapsed < 10  # sanity only


def test_trades_with_millisecond_and_microsecond_times_share_one_timeline(tmp_path: Path) -> None:
    old = tmp_path / "BTCUSDT-trades-2024-12-31.csv"
    old.write_text(
        "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\n"
        "1,93000.10,0.1,9300.01,1735689599000,true,true\n"
        "2,93000.20,0.1,9300.02,1735689599000,false,true\n"
    )
    new = tmp_path / "BTCUSDT-trades-2025-01-01.csv"
    new.write_text("3,93001.00,0.2,18600.2,1735689600000000,false,true\n")
    points = list(replay_points([old, new], 2))
    assert [(p.at, p.price, p.source_at) for p in points] == [
        (0, D("93000.10"), 1735689599000),
        (0, D("93000.20"), 1735689599000),
        (500, D("93001.00"), 1735689600000),
    ]
    with pytest.raises(ValueError, match="out of order"):
        list(trade_path([(10, D(1)), (5, D(1))]))


async def test_trades_sharing_a_millisecond_keep_distinct_increasing_ids(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "\n".join(f"{i},{100 + i},1,1,{1735689599000 + i // 3},true,true" for i in range(9)) + "\n"
    )
    ticks = await take(ReplaySource("BTCUSDT", [path], speed=1, clock=jumping_clock()))
    ids = [t.stream_id for t in ticks]
    assert len(set(ids)) == 9 and [t.key() for t in ticks] == sorted(t.key() for t in ticks)
    assert [t.price for t in ticks] == [D(100 + i) for i in range(9)]


async def test_synthetic_ticks_sit_on_a_wall_clock_grid() -> None:
    ticks = await take(SyntheticSource("BTCUSDT", interval_ms=10), 5)
    assert all(t.event_ms == t.seq * 10 for t in ticks)
    assert [t.seq for t in ticks] == list(range(ticks[0].seq, ticks[0].seq + 5))
    assert all(t.recv_ms >= t.event_ms for t in ticks)


async def test_synthetic_prices_resume_from_the_last_tick_identically_everywhere() -> None:
    slot = wall_ms() // 5 + 40  # a slot 200 ms ahead: both sources start exactly after it
    last = FeedTick("BTCUSDT", D("123.45"), slot * 5, 0, "synthetic", slot)
    a, b = await asyncio.gather(
        take(SyntheticSource("BTCUSDT", seed=9, interval_ms=5, resume_from=last), 5),
        take(SyntheticSource("BTCUSDT", seed=9, interval_ms=5, resume_from=last), 5),
    )
    assert [(t.seq, t.price) for t in a] == [(t.seq, t.price) for t in b]
    assert a[0].seq == slot + 1
    assert abs(a[0].price - D("123.45")) < D("1.25")  # continues from the last price
