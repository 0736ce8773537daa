"""The feed's pure decisions: Binance frame parsing, backoff, breaker, limiters.

No I/O, no clock: every function takes the time, so these run in milliseconds.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal as D

import pytest

from matchserver.feed.binance import (
    Backoff,
    BreakerState,
    CircuitBreaker,
    Heartbeat,
    Ignored,
    MalformedFrameError,
    ServerShutdown,
    SlidingWindowLimiter,
    TokenBucket,
    combined_url,
    parse_message,
    stream_names,
)
from matchserver.feed.sources import FeedTick

AGG = {
    "e": "aggTrade",
    "E": 1759276800123,
    "s": "BTCUSDT",
    "a": 3012345678,
    "p": "114048.94000000",
    "q": "0.00120000",
    "f": 5012345670,
    "l": 5012345672,
    "T": 1759276800120,
    "m": True,
    "M": True,
}
KLINE = {
    "e": "kline",
    "E": 1759276801001,
    "s": "BTCUSDT",
    "k": {
        "t": 1759276800000,
        "T": 1759276800999,
        "s": "BTCUSDT",
        "i": "1s",
        "f": 5012345670,
        "L": 5012345680,
        "o": "114048.94000000",
        "c": "114050.00000000",
        "h": "114050.00000000",
        "l": "114048.93000000",
        "v": "0.51000000",
        "n": 11,
        "x": True,
        "q": "58165.44000000",
        "V": "0.30000000",
        "Q": "34215.00000000",
        "B": "0",
    },
}


def frame(stream: str, data: object) -> str:
    return json.dumps({"stream": stream, "data": data})


# --------------------------------------------------------------------- parsing
def test_agg_trade_becomes_a_tick_identified_by_trade_time_and_aggregate_id() -> None:
    tick = parse_message(frame("btcusdt@aggTrade", AGG), recv_ms=1759276800200)
    assert tick == FeedTick(
        symbol="BTCUSDT",
        price=D("114048.94000000"),
        event_ms=1759276800120,
        recv_ms=1759276800200,
        source="binance",
        seq=3012345678,
    )
    assert isinstance(tick, FeedTick) and tick.stream_id == "1759276800120-3012345678"


def test_microsecond_timestamps_are_read_as_milliseconds() -> None:
    data = {**AGG, "T": 1759276800120456, "E": 1759276800123456}
    tick = parse_message(frame("btcusdt@aggTrade", data), 0)
    assert isinstance(tick, FeedTick) and tick.event_ms == 1759276800120


def test_kline_is_a_heartbeat_and_server_shutdown_and_replies_are_recognised() -> None:
    assert parse_message(frame("btcusdt@kline_1s", KLINE), 0) == Heartbeat(
        "btcusdt@kline_1s", 1759276801001
    )
    shutdown = {"e": "serverShutdown", "E": 1759276801500}
    assert parse_message(json.dumps(shutdown), 0) == ServerShutdown(1759276801500)
    assert parse_message(frame("btcusdt@aggTrade", shutdown), 0) == ServerShutdown(1759276801500)
    assert parse_message('{"result": null, "id": 1}', 0) == Ignored("reply")
    assert isinstance(parse_message(frame("btcusdt@trade", {"e": "trade"}), 0), Ignored)


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        b"\xff\xfe",
        "[1, 2]",
        '{"data": {}}',
        frame("btcusdt@aggTrade", "oops"),
        frame("btcusdt@aggTrade", {**AGG, "p": "abc"}),
        frame("btcusdt@aggTrade", {**AGG, "p": "-1"}),
        frame("btcusdt@aggTrade", {**AGG, "p": "NaN"}),
        frame("btcusdt@aggTrade", {**AGG, "p": 114048.94}),
        frame("btcusdt@aggTrade", {**AGG, "a": "3012345678"}),
        frame("btcusdt@aggTrade", {**AGG, "a": True}),
        frame("btcusdt@aggTrade", {k: v for k, v in AGG.items() if k != "T"}),
        frame("btcusdt@kline_1s", {**KLINE, "k": None}),
        frame("btcusdt@kline_1s", {**KLINE, "k": {**KLINE["k"], "x": 1}}),  # type: ignore[dict-item]
        frame("btcusdt@aggTrade", {"no": "event"}),
    ],
)
def test_malformed_frames_raise_one_error_type(raw: str | bytes) -> None:
    with pytest.raises(MalformedFrameError):
        parse_message(raw, 0)


def test_combined_url_follows_binance_rules() -> None:
    url = combined_url("wss://stream.binance.com:9443/", stream_names("BTCUSDT"))
    assert url == "wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade/btcusdt@kline_1s"
    with pytest.raises(ValueError, match="1024"):
        combined_url("wss://x", [f"s{i}usdt@aggTrade" for i in range(1025)])
    with pytest.raises(ValueError, match="lowercase"):
        combined_url("wss://x", ["BTCUSDT@aggTrade"])
    assert combined_url("wss://x", [f"s{i}@aggtrade" for i in range(1024)]).count("/") == 1026


# --------------------------------------------------------------------- backoff, breaker, limits
def test_backoff_is_jittered_under_an_exponential_ceiling_and_resets() -> None:
    backoff = Backoff(base_ms=100, cap_ms=3000, rng=random.Random(7))
    delays = [backoff.next_delay_ms() for _ in range(10)]
    ceilings = [min(3000, 100 * 2**n) for n in range(10)]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) > 5  # jitter: not a fixed schedule
    many = [Backoff(100, 3000, random.Random(s)) for s in range(200)]
    for b in many:
        b.failures = 8
    assert max(b.next_delay_ms() for b in many) > 1500  # the ceiling grew to the cap
    backoff.reset()
    assert backoff.next_delay_ms() <= 100


def test_circuit_breaker_opens_half_opens_and_doubles_its_cool_off() -> None:
    b = CircuitBreaker(threshold=3, open_ms=1000, max_open_ms=3000)
    for t in (0, 10):
        b.failure(t)
        assert b.allow(t)
    b.failure(20)
    assert b.state is BreakerState.OPEN and not b.allow(500) and b.retry_at() == 1020
    assert b.allow(1020) and b.state is BreakerState.HALF_OPEN
    b.failure(1030)  # the trial failed: open again, for twice as long
    assert not b.allow(2900) and b.allow(3030)
    b.failure(3040)
    assert b.current_open_ms == 3000  # capped
    assert b.allow(6040)
    b.success()
    assert b.state is BreakerState.CLOSED and b.failures == 0
    b.failure(7000)
    assert b.allow(7001)  # counting starts again from zero


def test_connection_attempts_are_limited_to_300_per_5_minutes() -> None:
    limiter = SlidingWindowLimiter()
    for i in range(300):
        assert limiter.wait_ms(i * 10) == 0
        limiter.record(i * 10)
    assert limiter.wait_ms(3000) == 300_000 - 3000  # until the first attempt leaves the window
    assert limiter.wait_ms(300_000) == 0


def test_outgoing_messages_are_limited_to_5_per_second() -> None:
    bucket = TokenBucket()
    assert sum(bucket.allow(0) for _ in range(20)) == 5
    assert not bucket.allow(100)
    assert bucket.allow(200)  # 0.2 s refills one
    assert sum(bucket.allow(5000) for _ in range(20)) == 5  # never more than a burst of 5
