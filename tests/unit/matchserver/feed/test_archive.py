"""The Binance archive reader on the real October/November 2025 files and on small samples.

The shared data folder sits next to the repository (../shared/data from the
repo root). A missing file fails the test: these are the prices the engine's
real-price tests are built on.
"""

from __future__ import annotations

import io
import itertools
import zipfile
from decimal import Decimal as D
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchserver.feed import archive
from matchserver.feed.archive import (
    Kline,
    PricePoint,
    kline_path,
    kline_prices,
    read_klines,
    read_trades,
    to_millis,
)
from tradearena.testing.paths import KLINES_DIR

DAY_MS = 86_400_000
MINUTE_MS = 60_000


def day_file(day: str) -> Path:
    path = KLINES_DIR / f"BTCUSDT-1m-{day}.csv"
    assert path.is_file(), f"missing test data {path}"
    return path


# Binance rows as published: microseconds (2025 spot) and milliseconds (older files).
KLINE_US = (
    "1760054400000000,121662.41000000,121719.43000000,121662.41000000,121662.47000000,"
    "18.27140000,1760054459999999,2223515.55447420,4094,10.38677000,1263914.87589270,0\n"
    "1760054460000000,121662.46000000,121697.50000000,121662.46000000,121697.50000000,"
    "5.18304000,1760054519999999,630600.07056180,1422,4.56865000,555849.56704370,0\n"
)
KLINE_MS = (
    "1704067200000,42283.58000000,42298.62000000,42261.02000000,42298.61000000,"
    "35.92724000,1704067259999,1519032.67416420,1327,18.58719000,785928.40140180,0\n"
    "1704067260000,42298.62000000,42320.00000000,42298.61000000,42320.00000000,"
    "21.07690000,1704067319999,891784.32700570,1026,13.72232000,580611.45232260,0\n"
)
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore\n"
)
TRADES = (
    "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\n"
    "3486215812,42283.58000000,0.00100000,42.28358000,1704067200000,True,True\n"
    "3486215813,42283.59000000,0.02000000,845.67180000,1704067200012345,false,true\n"
)


def test_microsecond_klines_become_milliseconds() -> None:
    first, second = read_klines(io.StringIO(KLINE_US))
    assert first == Kline(
        open_time=1760054400000,
        open=D("121662.41"),
        high=D("121719.43"),
        low=D("121662.41"),
        close=D("121662.47"),
        volume=D("18.2714"),
        close_time=1760054459999,
        quote_volume=D("2223515.5544742"),
        trades=4094,
        taker_buy_base=D("10.38677"),
        taker_buy_quote=D("1263914.8758927"),
    )
    assert first.interval_ms == MINUTE_MS
    assert second.open_time - first.open_time == MINUTE_MS
    assert isinstance(first.open, D) and isinstance(first.open_time, int)


def test_millisecond_klines_are_kept_and_a_header_is_skipped() -> None:
    rows = list(read_klines(io.StringIO(KLINE_HEADER + KLINE_MS)))
    assert [k.open_time for k in rows] == [1704067200000, 1704067260000]
    assert rows[0].close_time == 1704067259999
    assert rows[1].high == D("42320")
    assert rows[0].interval_ms == MINUTE_MS


def test_a_first_row_with_letters_in_its_timestamp_is_an_error_not_a_header() -> None:
    corrupt = "17040672OO000" + KLINE_MS[KLINE_MS.index(",") :]  # letter O for zero
    with pytest.raises(ValueError, match=r"^line 1: open_time is not an integer: '17040672OO000'"):
        list(read_klines(io.StringIO(corrupt)))
    trade = "12x,42000.5,0.1,4200.05,1704067200000,true,true\n"
    with pytest.raises(ValueError, match=r"^line 1: id is not an integer: '12x'"):
        list(read_trades(io.StringIO(trade)))
    # A real header names the columns: no cell of it is a number.
    assert len(list(read_klines(io.StringIO(KLINE_HEADER + KLINE_MS)))) == 2


def test_units_are_detected_per_value() -> None:
    assert to_millis(1704067200000) == 1704067200000
    assert to_millis(1704067200000999) == 1704067200000
    assert to_millis(10**15 - 1) == 10**15 - 1  # still milliseconds
    assert to_millis(10**15) == 10**12
    with pytest.raises(ValueError, match="negative"):
        to_millis(-1)
    # a trades file whose rows mix both units (row 2 is microseconds)
    trades = list(read_trades(io.StringIO(TRADES)))
    assert [t.time for t in trades] == [1704067200000, 1704067200012]


def test_trades_are_typed() -> None:
    first, second = read_trades(io.StringIO(TRADES))
    assert first.id == 3486215812
    assert (first.price, first.qty, first.quote_qty) == (D("42283.58"), D("0.001"), D("42.28358"))
    assert (first.is_buyer_maker, first.is_best_match) == (True, True)
    assert (second.is_buyer_maker, second.is_best_match) == (False, True)
    futures = list(read_trades(["1,100.5,2,201,1704067200000,false\n"]))
    assert futures[0].is_best_match is None
    assert futures[0].price == D("100.5")


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        (KLINE_US.replace(",4094,", ",many,"), 1, "trades is not an integer"),
        (KLINE_US.replace("121697.50000000,5.18", "abc,5.18"), 2, "close is not a number"),
        (KLINE_MS + "1704067320000,1,2,3\n", 3, "expected 12 columns, got 4"),
        (KLINE_MS.replace("42320.00000000,21.07", "NaN,21.07"), 2, "close must be a finite"),
        (KLINE_MS.replace("42298.62000000,42320", "0,42320"), 2, "open must be positive"),
        (KLINE_MS.replace("42261.02000000", "42299.00000000"), 1, "low .* do not bracket"),
        (KLINE_MS.replace("1704067259999", "1704067100000"), 1, "close_time .* before open_time"),
        (KLINE_HEADER + KLINE_MS + "\n" + KLINE_HEADER, 5, "open_time is not an integer"),
    ],
)
def test_malformed_kline_names_the_line(text: str, line: int, what: str) -> None:
    with pytest.raises(ValueError, match=rf"^line {line}: {what}"):
        list(read_klines(io.StringIO(text)))


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        (TRADES.replace("True,True", "yes,True"), 2, "is_buyer_maker is not true/false"),
        (TRADES + "1,2,3\n", 4, "expected 7 \\(or 6\\) columns, got 3"),
        (TRADES.replace("0.02000000", "-0.02"), 3, "qty must be a finite non-negative"),
        (TRADES.replace(",1704067200000,", ",-5,"), 2, "negative timestamp"),
    ],
)
def test_malformed_trade_names_the_line(text: str, line: int, what: str) -> None:
    with pytest.raises(ValueError, match=rf"^line {line}: {what}"):
        list(read_trades(io.StringIO(text)))


def test_blank_lines_are_ignored_but_counted() -> None:
    text = KLINE_MS.replace("\n", "\n\n", 1) + "oops\n"
    with pytest.raises(ValueError, match=r"^line 4: "):
        list(read_klines(io.StringIO(text)))
    assert len(list(read_klines(io.StringIO(KLINE_MS.replace("\n", "\n\n"))))) == 2


def test_zip_archive_and_plain_path_read_alike(tmp_path: Path) -> None:
    csv_path = tmp_path / "BTCUSDT-1m-2024-01-01.csv"
    csv_path.write_text(KLINE_MS, encoding="utf-8")
    zip_path = tmp_path / "BTCUSDT-1m-2024-01-01.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr(csv_path.name, KLINE_MS)
    assert list(read_klines(zip_path)) == list(read_klines(str(csv_path)))
    assert len(list(read_klines(zip_path))) == 2
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a.csv", KLINE_MS)
        zf.writestr("b.csv", KLINE_MS)
    with pytest.raises(ValueError, match="expected one file"):
        list(read_klines(two))


@pytest.mark.parametrize("day", ["2025-10-01", "2025-10-10", "2025-11-30"])
def test_real_day_files_are_complete_and_consistent(day: str) -> None:
    klines = list(read_klines(day_file(day)))
    assert len(klines) == 1440
    midnight = klines[0].open_time
    assert midnight % DAY_MS == 0
    assert [k.open_time for k in klines] == [midnight + i * MINUTE_MS for i in range(1440)]
    for k in klines:
        assert k.close_time == k.open_time + MINUTE_MS - 1
        assert D(80_000) < k.low <= min(k.open, k.close) <= max(k.open, k.close) <= k.high
        assert k.high < D(127_000)


def test_all_real_files_read_within_the_documented_range() -> None:
    files = sorted(KLINES_DIR.glob("BTCUSDT-1m-*.csv"))
    assert len(files) == 61, f"expected 61 day files in {KLINES_DIR}"
    low, high, count = D("Infinity"), D(0), 0
    for f in files:
        for k in read_klines(f):
            low, high, count = min(low, k.low), max(high, k.high), count + 1
    assert (low, high) == (D("80600"), D("126199.63"))
    assert count == 61 * 1440


def test_the_crash_day_falls_from_about_122k_to_about_105k() -> None:
    klines = list(read_klines(day_file("2025-10-10")))
    assert D(121_000) < klines[0].open < D(123_000)
    bottom = min(klines, key=lambda k: k.low)
    assert bottom.low < D(106_000)
    # the bottom came in the evening (UTC), hours after the day opened
    assert (bottom.open_time - klines[0].open_time) // 3_600_000 >= 20


def test_kline_prices_follow_the_candle_direction() -> None:
    up, _ = read_klines(io.StringIO(KLINE_MS))
    assert up.close >= up.open
    assert kline_prices(up) == (up.open, up.low, up.high, up.close)
    down = Kline(0, D(10), D(12), D(7), D(8), D(1), 59_999, D(1), 1, D(0), D(0))
    assert kline_prices(down) == (D(10), D(12), D(7), D(8))


def test_kline_path_spaces_four_prices_per_minute_and_compresses_time() -> None:
    klines = list(read_klines(io.StringIO(KLINE_US)))
    path = list(kline_path(klines, speed=60, start_at=1_000))
    assert [p.at for p in path] == [1_000, 1_250, 1_500, 1_750, 2_000, 2_250, 2_500, 2_750]
    assert [p.source_at - klines[0].open_time for p in path[:5]] == [
        0,
        15_000,
        30_000,
        45_000,
        60_000,
    ]
    first = klines[0]
    assert [p.price for p in path[:4]] == [first.open, first.low, first.high, first.close]
    real_time = list(kline_path(klines))
    assert [p.at for p in real_time][:3] == [0, 15_000, 30_000]
    assert [p.price for p in real_time] == [p.price for p in path]


def test_kline_path_keeps_gaps_and_accepts_fractional_speed() -> None:
    a, b = read_klines(io.StringIO(KLINE_MS))
    later = Kline(
        b.open_time + 10 * MINUTE_MS,
        D(1),
        D(1),
        D(1),
        D(1),
        D(0),
        b.close_time + 10 * MINUTE_MS,
        D(0),
        0,
        D(0),
        D(0),
    )
    path = list(kline_path([a, b, later], speed=Fraction(5, 2)))
    assert path[4].at == 24_000  # one minute / 2.5
    assert path[8].at == 11 * MINUTE_MS * 2 // 5
    assert all(x.at < y.at for x, y in itertools.pairwise(path))
    assert list(kline_path([a], speed=D("0.5")))[1].at == 30_000


def test_kline_path_rejects_bad_speed_and_disorder() -> None:
    a, b = read_klines(io.StringIO(KLINE_MS))
    with pytest.raises(ValueError, match="speed must be positive"):
        list(kline_path([a], speed=0))
    with pytest.raises(ValueError, match="too high"):
        list(kline_path([a], speed=20_000))  # 15 s apart would become < 1 ms
    with pytest.raises(ValueError, match="out of order"):
        list(kline_path([b, a]))


def test_real_crash_day_path_is_strictly_increasing_and_exact() -> None:
    klines = list(read_klines(day_file("2025-10-10")))
    path = list(kline_path(klines, speed=120))
    assert len(path) == 4 * 1440
    assert path[0] == PricePoint(0, klines[0].open, klines[0].open_time)
    assert path[-1].at == (DAY_MS - 15_000) // 120
    assert all(x.at < y.at for x, y in itertools.pairwise(path))
    assert min(p.price for p in path) == min(k.low for k in klines)
    assert max(p.price for p in path) == max(k.high for k in klines)


def test_the_package_reexports_the_reader() -> None:
    import matchserver.feed as feed

    assert feed.read_klines is archive.read_klines
    assert feed.kline_path is archive.kline_path


prices = st.decimals(min_value=D("0.01"), max_value=D("500000"), places=8)
amounts = st.decimals(min_value=D(0), max_value=D("1000000"), places=8)


@st.composite
def klines(draw: st.DrawFn) -> list[Kline]:
    start = draw(st.integers(1_500_000_000_000, 1_900_000_000_000)) // MINUTE_MS * MINUTE_MS
    gaps = draw(st.lists(st.integers(1, 5), min_size=1, max_size=20))
    out: list[Kline] = []
    at = start
    for gap in gaps:
        o, c = draw(prices), draw(prices)
        low = min(o, c) - draw(st.decimals(min_value=0, max_value=min(o, c) - D("0.01"), places=2))
        high = max(o, c) + draw(st.decimals(min_value=0, max_value=1000, places=2))
        out.append(
            Kline(
                at,
                o,
                high,
                low,
                c,
                draw(amounts),
                at + MINUTE_MS - 1,
                draw(amounts),
                draw(st.integers(0, 10**6)),
                draw(amounts),
                draw(amounts),
            )
        )
        at += gap * MINUTE_MS
    return out


def _to_csv(rows: list[Kline], micros: list[bool]) -> str:
    def ts(value: int, us: bool) -> str:
        return str(value * 1000 + 999 * (value % MINUTE_MS == MINUTE_MS - 1)) if us else str(value)

    return "".join(
        f"{ts(k.open_time, us)},{k.open},{k.high},{k.low},{k.close},{k.volume},"
        f"{ts(k.close_time, us)},{k.quote_volume},{k.trades},{k.taker_buy_base},"
        f"{k.taker_buy_quote},0\n"
        for k, us in zip(rows, micros, strict=True)
    )


@settings(deadline=None, max_examples=80)
@given(rows=klines(), data=st.data(), header=st.booleans())
def test_any_archive_reads_back_what_was_written(
    rows: list[Kline], data: st.DataObject, header: bool
) -> None:
    """Whatever the unit of each row (ms or µs), the records come back exact."""
    micros = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    text = (KLINE_HEADER if header else "") + _to_csv(rows, micros)
    assert list(read_klines(io.StringIO(text))) == rows
    speed = data.draw(st.sampled_from([1, 7, 60, 240]))
    path = list(kline_path(rows, speed=speed, start_at=5))
    assert len(path) == 4 * len(rows)
    assert path[0].at == 5
    assert all(x.at < y.at for x, y in itertools.pairwise(path))
    for i, k in enumerate(rows):
        quad = path[4 * i : 4 * i + 4]
        assert [p.price for p in quad] == list(kline_prices(k))
        assert all(k.low <= p.price <= k.high for p in quad)
        assert [p.source_at for p in quad] == [k.open_time + j * 15_000 for j in range(4)]
        assert all(p.at == 5 + (p.source_at - rows[0].open_time) // speed for p in quad)
