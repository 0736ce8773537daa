"""The candles API's pure decisions: the fairness cap, the window, pages, caching."""

from __future__ import annotations

from decimal import Decimal

from lobby.market import candles_view as view
from tradearena.contracts.candles import Candle, CandleInterval
from tradearena.modes import default_catalogue

M1 = CandleInterval.M1
NOW = 1_800_000_030_000  # 30 s into a minute


def candle(t: int) -> Candle:
    p = Decimal("1")
    return Candle(t=t, o=p, h=p, low=p, c=p, n=1)


def test_the_cap_is_the_longest_price_delay_of_the_catalogue() -> None:
    catalogue = default_catalogue()
    delays = {m.rules.price_delay_ms for m in catalogue.modes.values()}
    assert view.fairness_cap_ms(catalogue) == max(delays) > 0
    name, mode = next(iter(catalogue.modes.items()))
    slow_mode = mode.model_copy(update={"rules": mode.rules.with_overrides(price_delay_ms=90_000)})
    slow = catalogue.model_copy(update={"modes": {**catalogue.modes, name: slow_mode}})
    assert view.fairness_cap_ms(slow) == 90_000


def test_no_candle_closing_after_the_cap_is_served_whatever_the_store_returns() -> None:
    win = view.window(M1, 0, None, 10, NOW, 5000)
    assert win.until == NOW - 5000
    stored = [candle(NOW - 30_000 - 120_000), candle(NOW - 30_000 - 60_000), candle(NOW - 30_000)]
    page = view.page(win, stored, later_exists=False)
    assert [c.t for c in page.candles] == [stored[0].t, stored[1].t]
    assert all(c.t + 60_000 <= win.until for c in page.candles)
    assert not page.final  # the cap ends it: it grows


def test_a_to_beyond_the_cap_is_clamped() -> None:
    win = view.window(M1, 0, NOW + 3_600_000, 10, NOW, 5000)
    assert win.last_open == NOW - 5000 - 60_000
    assert win.clamped


def test_pages_follow_next_from_without_gaps_or_overlap() -> None:
    stored = [candle(60_000 * k) for k in range(10)]
    seen: list[int] = []
    start: int | None = 0
    while start is not None:
        win = view.window(M1, start, 600_000, 3, NOW, 5000)
        found = [c for c in stored if c.t >= start][: win.limit + 1]
        page = view.page(win, found, later_exists=False)
        seen += [c.t for c in page.candles]
        assert page.final == (page.next_from is not None)
        start = page.next_from
    assert seen == [c.t for c in stored]


def test_a_window_that_to_ends_is_final_once_a_later_candle_is_stored() -> None:
    win = view.window(M1, 0, 180_000, 10, NOW, 5000)
    found = [candle(0), candle(60_000), candle(120_000), candle(180_000)]
    page = view.page(win, found, later_exists=True)
    assert [c.t for c in page.candles] == [0, 60_000, 120_000]
    assert page.next_from is None
    assert page.final
    assert not view.page(win, found[:3], later_exists=False).final


def test_without_from_the_newest_limit_and_never_final() -> None:
    win = view.window(M1, None, None, 2, NOW, 5000)
    page = view.page(win, [candle(0), candle(60_000), candle(120_000)], later_exists=False)
    assert [c.t for c in page.candles] == [60_000, 120_000]
    assert page.next_from is None
    assert not page.final


def test_cache_headers_and_etags() -> None:
    assert view.cache_control(True) == "public, max-age=86400"
    assert view.cache_control(False) == "public, max-age=1"
    tag = view.etag(b"{}")
    assert view.matches_etag(f'W/{tag}, "x"', tag)
    assert view.matches_etag("*", tag)
    assert not view.matches_etag('"other"', tag)
    assert not view.matches_etag(None, tag)
