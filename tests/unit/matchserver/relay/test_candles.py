"""The candle aggregator: boundaries, gaps, out-of-order ticks, exact decimals."""

from __future__ import annotations

from decimal import Decimal

from matchserver.relay.candles import CandleState, advance, aggregate, open_time
from tradearena.contracts.candles import (
    Candle,
    CandleInterval,
    decode_candle,
    encode_candle,
)
from tradearena.contracts.feed import FeedTick

S1, M1 = CandleInterval.S1, CandleInterval.M1
BASE = 1_700_000_040_000  # a whole minute


def tick(ms: int, price: str, seq: int = 0) -> FeedTick:
    return FeedTick("BTCUSDT", Decimal(price), ms, ms, "synthetic", seq)


def of(interval: CandleInterval, closed: list[tuple[CandleInterval, Candle]]) -> list[Candle]:
    return [c for i, c in closed if i is interval]


def test_a_candle_closes_only_at_the_first_tick_at_or_after_its_close_time() -> None:
    state, closed = aggregate([tick(BASE, "10"), tick(BASE + 400, "12"), tick(BASE + 999, "9")])
    assert closed == []
    state, closed = advance(state, tick(BASE + 1000, "11"))
    assert of(S1, closed) == [
        Candle(t=BASE, o=Decimal("10"), h=Decimal("12"), low=Decimal("9"), c=Decimal("9"), n=3)
    ]
    assert of(M1, closed) == []  # the minute is still open
    _, closed = advance(state, tick(BASE + 60_000, "13"))
    assert of(M1, closed) == [
        Candle(t=BASE, o=Decimal("10"), h=Decimal("12"), low=Decimal("9"), c=Decimal("11"), n=4)
    ]
    assert [c.t for c in of(S1, closed)] == [BASE + 1000]


def test_a_gap_leaves_no_candle_and_the_next_tick_opens_its_own() -> None:
    _, closed = aggregate([tick(BASE, "10"), tick(BASE + 5_250, "11"), tick(BASE + 7_000, "12")])
    assert [c.t for c in of(S1, closed)] == [BASE, BASE + 5000]
    assert of(S1, closed)[1].o == Decimal("11")


def test_out_of_order_and_duplicate_ticks_change_nothing() -> None:
    state, _ = aggregate([tick(BASE, "10", 1), tick(BASE + 500, "20", 2)])
    for late in (tick(BASE + 100, "1", 1), tick(BASE + 500, "30", 2), tick(BASE + 500, "5", 1)):
        after, closed = advance(state, late)
        assert after == state
        assert closed == []
    same_ms, _ = advance(state, tick(BASE + 500, "30", 3))  # same ms, later seq: taken
    assert same_ms.building[0] is not None
    assert same_ms.building[0].h == Decimal("30")


def test_prices_stay_the_exact_decimals_of_the_ticks() -> None:
    prices = ["100000.10", "99999.99000001", "100000.1", "1E+5"]
    ticks = [tick(BASE + i * 100, p) for i, p in enumerate(prices)]
    _, closed = aggregate([*ticks, tick(BASE + 1000, "1")])
    (candle,) = of(S1, closed)
    assert candle.wire() == {
        "t": BASE,
        "o": "100000.10",
        "h": "100000.10",  # 100000.10 == 100000.1: the first one stays
        "l": "99999.99000001",
        "c": "1E+5",
        "n": 4,
    }
    assert decode_candle(candle.stream_id, encode_candle(candle)) == candle


def test_open_times_are_aligned_to_the_interval() -> None:
    assert open_time(BASE + 59_999, M1) == BASE
    assert open_time(BASE + 60_000, M1) == BASE + 60_000
    assert open_time(BASE + 1_999, S1) == BASE + 1000
    assert CandleState().building == (None, None)
