"""Binance public market-data archives (data.binance.vision) as typed records.

Two CSV layouts are read: klines (12 columns: open_time, open, high, low,
close, volume, close_time, quote_volume, trades, taker_buy_base,
taker_buy_quote, ignore) and trades (id, price, qty, quote_qty, time,
is_buyer_maker[, is_best_match]). Files may start with a header line. Binance
wrote timestamps in milliseconds until 2024 and in microseconds since
2025-01-01 (spot), so each timestamp is classified on its own: a value of at
least 10^15 is microseconds. Records always carry integer milliseconds.

Pure: the only I/O is reading the file objects or paths the caller passes; a
`.zip` path is read as the single CSV inside it, as Binance publishes them.

`kline_path` turns 1-minute klines into a price path a match can be fed with:
open, then low and high in the order that is plausible for the candle, then
close, on a timeline compressed by a `speed` factor.
"""

from __future__ import annotations

import csv
import os
import re
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

MICROS_THRESHOLD = 10**15  # 10^15 ms is year 33658; 10^15 us is 2001-09-09
KLINE_COLUMNS = 12
TRADE_COLUMNS = (6, 7)  # futures archives have no is_best_match column

Source = str | os.PathLike[str] | Iterable[str]
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class Kline:
    """One candle; times in milliseconds since the epoch (close_time is inclusive)."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time: int
    quote_volume: Decimal
    trades: int
    taker_buy_base: Decimal
    taker_buy_quote: Decimal

    @property
    def interval_ms(self) -> int:
        return self.close_time + 1 - self.open_time


@dataclass(frozen=True, slots=True)
class Trade:
    id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    time: int  # milliseconds since the epoch
    is_buyer_maker: bool
    is_best_match: bool | None  # None when the archive has no such column


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A price on the compressed timeline (`at`) and when it happened (`source_at`)."""

    at: int
    price: Decimal
    source_at: int


def to_millis(value: int) -> int:
    """Milliseconds from a Binance timestamp in milliseconds or microseconds."""
    if value < 0:
        raise ValueError(f"negative timestamp {value}")
    return value // 1000 if value >= MICROS_THRESHOLD else value


# ---------------------------------------------------------------- field parsers
def _int(text: str, name: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{name} is not an integer: {text!r}") from None


def _time(text: str, name: str) -> int:
    return to_millis(_int(text, name))


def _decimal(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{name} is not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number: {text!r}")
    return value


def _price(text: str, name: str) -> Decimal:
    value = _decimal(text, name)
    if value == 0:
        raise ValueError(f"{name} must be positive: {text!r}")
    return value


def _bool(text: str, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ValueError(f"{name} is not true/false: {text!r}")


_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _is_header(row: list[str]) -> bool:
    """A header names the columns: not one of its cells is a number. A first row with a
    letter in its timestamp but numbers elsewhere is a broken row, and an error."""
    cells = [cell for cell in row if cell.strip()]
    return bool(cells) and not any(_NUMBER.fullmatch(cell) for cell in cells)


# ---------------------------------------------------------------- row parsers
def parse_kline(row: list[str]) -> Kline:
    if len(row) != KLINE_COLUMNS:
        raise ValueError(f"expected {KLINE_COLUMNS} columns, got {len(row)}")
    kline = Kline(
        open_time=_time(row[0], "open_time"),
        open=_price(row[1], "open"),
        high=_price(row[2], "high"),
        low=_price(row[3], "low"),
        close=_price(row[4], "close"),
        volume=_decimal(row[5], "volume"),
        close_time=_time(row[6], "close_time"),
        quote_volume=_decimal(row[7], "quote_volume"),
        trades=_int(row[8], "trades"),
        taker_buy_base=_decimal(row[9], "taker_buy_base"),
        taker_buy_quote=_decimal(row[10], "taker_buy_quote"),
    )
    if kline.close_time < kline.open_time:
        raise ValueError(f"close_time {kline.close_time} is before open_time {kline.open_time}")
    if kline.low > min(kline.open, kline.close) or kline.high < max(kline.open, kline.close):
        raise ValueError(
            f"low {kline.low} / high {kline.high} do not bracket open {kline.open} "
            f"and close {kline.close}"
        )
    if kline.trades < 0:
        raise ValueError(f"trades must not be negative: {kline.trades}")
    return kline


def parse_trade(row: list[str]) -> Trade:
    if len(row) not in TRADE_COLUMNS:
        raise ValueError(f"expected 7 (or 6) columns, got {len(row)}")
    return Trade(
        id=_int(row[0], "id"),
        price=_price(row[1], "price"),
        qty=_decimal(row[2], "qty"),
        quote_qty=_decimal(row[3], "quote_qty"),
        time=_time(row[4], "time"),
        is_buyer_maker=_bool(row[5], "is_buyer_maker"),
        is_best_match=_bool(row[6], "is_best_match") if len(row) == 7 else None,
    )


# ---------------------------------------------------------------- readers
def _decoded(raw_lines: Iterable[bytes]) -> Iterator[str]:
    """Line by line, so that a byte that is not UTF-8 is reported on its own line."""
    for raw in raw_lines:
        yield raw.decode("utf-8")


def _lines(source: Source) -> Iterator[str]:
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if not n.endswith("/")]
                if len(members) != 1:
                    raise ValueError(f"expected one file in the archive, got {members}")
                with archive.open(members[0]) as raw:
                    yield from _decoded(raw)
            return
        with path.open("rb") as fh:
            yield from _decoded(fh)
        return
    yield from source


def data_rows(source: Source) -> Generator[tuple[int, list[str]], None, None]:
    """(line number, cells) of every data row: blank lines and a header skipped.

    Whatever is wrong with the source is a ValueError naming the line and the reason,
    and the file first when `source` is a path: missing or unreadable, not a zip
    archive, not UTF-8 text, a NUL byte.
    """
    where = f"{os.fspath(source)}: " if isinstance(source, str | os.PathLike) else ""
    reader = csv.reader(_lines(source))
    try:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise ValueError(f"line {reader.line_num + 1}: not a text file") from None
            except csv.Error as exc:
                raise ValueError(f"line {reader.line_num}: not a text file ({exc})") from None
            if not row or all(not cell.strip() for cell in row):
                continue
            if reader.line_num == 1 and _is_header(row):
                continue
            yield reader.line_num, row
    except FileNotFoundError as exc:
        raise ValueError(f"{where}cannot open: {exc.strerror}") from None
    except OSError as exc:
        raise ValueError(f"{where}cannot read: {exc.strerror or exc}") from None
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{where}not a zip archive ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{where}{exc}") from None


def _read(source: Source, parse: Callable[[list[str]], _R]) -> Iterator[_R]:
    where = f"{os.fspath(source)}: " if isinstance(source, str | os.PathLike) else ""
    for number, row in data_rows(source):
        try:
            yield parse(row)
        except ValueError as exc:
            raise ValueError(f"{where}line {number}: {exc}") from None


def read_klines(source: Source) -> Iterator[Kline]:
    """Klines from a path (CSV or .zip) or an iterable of lines (an open text file)."""
    return _read(source, parse_kline)


def read_trades(source: Source) -> Iterator[Trade]:
    """Trades from a path (CSV or .zip) or an iterable of lines (an open text file)."""
    return _read(source, parse_trade)


# ---------------------------------------------------------------- price paths
def kline_prices(kline: Kline) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """open, the two extremes in a plausible order, close.

    A candle that closed at or above its open more likely went down first and
    then up (low before high); one that closed lower, the other way round.
    """
    if kline.close >= kline.open:
        return kline.open, kline.low, kline.high, kline.close
    return kline.open, kline.high, kline.low, kline.close


def kline_path(
    klines: Iterable[Kline],
    *,
    speed: int | Fraction | Decimal = 1,
    start_at: int = 0,
) -> Iterator[PricePoint]:
    """Four prices per kline, evenly spaced inside it, on a timeline `speed` times faster.

    The first kline's open time maps to `start_at`; a source time `t` maps to
    `start_at + floor((t - origin) / speed)`, so gaps between klines stay gaps
    (scaled). Times strictly increase: klines must be in order and the speed
    low enough that two points never share a millisecond (else ValueError).
    """
    factor = Fraction(speed)
    if factor <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    origin: int | None = None
    last_at: int | None = None
    last_source: int | None = None
    for kline in klines:
        if origin is None:
            origin = kline.open_time
        if last_source is not None and kline.open_time <= last_source:
            raise ValueError(
                f"klines out of order: {kline.open_time} does not follow {last_source}"
            )
        quarter = Fraction(kline.interval_ms, 4)
        for i, price in enumerate(kline_prices(kline)):
            source_at = kline.open_time + int(i * quarter)
            at = start_at + int((source_at - origin) / factor)
            if last_at is not None and at <= last_at:
                raise ValueError(
                    f"speed {speed} is too high: prices at {last_source} and {source_at} "
                    "would share a millisecond"
                )
            last_at, last_source = at, source_at
            yield PricePoint(at, price, source_at)
