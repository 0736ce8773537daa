"""The past a cold relay writes: synthetic reversed walk, replay's first part."""

from __future__ import annotations

import itertools
from decimal import Decimal

from matchserver.feed.sources import replay_points
from matchserver.relay.backfill import replay_history, synthetic_history
from tradearena.testing.paths import KLINES_DIR

NOW = 1_800_000_000_123


def test_synthetic_history_ends_at_the_live_start_price_on_the_grid() -> None:
    ticks = synthetic_history(
        "BTCUSDT",
        seed=3,
        interval_ms=250,
        start_price=Decimal("100000"),
        span_ms=3_600_000,
        now_ms=NOW,
    )
    assert len(ticks) == 14_400
    assert ticks[-1].price == Decimal("100000")
    assert ticks[-1].event_ms == NOW - NOW % 250 <= NOW
    assert all(b.event_ms - a.event_ms == 250 for a, b in itertools.pairwise(ticks))
    assert all(t.seq * 250 == t.event_ms for t in ticks)  # the live source's identity
    assert len({t.price for t in ticks}) > 100  # it moves


def test_replay_history_is_the_archive_start_on_the_replay_timeline_before_now() -> None:
    day = KLINES_DIR / "BTCUSDT-1m-2025-10-01.csv"
    ticks = replay_history("BTCUSDT", [day], speed=60, span_ms=6 * 3600 * 1000, now_ms=NOW)
    points = list(replay_points([day], 60))
    half = (points[-1].at - points[0].at) // 2  # a day at x60: 24 min; history: half of it
    assert ticks[0].event_ms == NOW - half
    assert ticks[-1].event_ms < NOW
    assert [t.price for t in ticks] == [p.price for p in points[: len(ticks)]]
    assert points[len(ticks)].at - points[0].at >= half
    assert [t.event_ms - ticks[0].event_ms for t in ticks] == [p.at for p in points[: len(ticks)]]
    assert ticks[-1].source_ms == points[len(ticks) - 1].source_at
