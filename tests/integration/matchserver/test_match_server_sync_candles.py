"""`sync` carries the match's recent official candles: a real match server fed through
Redis by the test itself (so it knows every price), real Socket.IO clients.

The fairness check: while a distinctive price is still in the delay line (a Peek shows
it), no candle on `sync` holds it; once it is official, the candles hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from matchserver.engine.candles import parse
from tradearena.contracts import keys
from tradearena.contracts.candles import Candle
from tradearena.contracts.feed import FeedTick, encode_tick
from tradearena.modes import default_catalogue
from tradearena.testing.match_client import MatchClient
from tradearena.testing.matchserver import MatchServerProcess
from tradearena.testing.waiting import eventually

MATCH = "m-candles"
PLAYERS = ("alice", "bob")
SYMBOL = "BTCUSDT"
DELAY_MS = 3000
DISTINCT = "123456.78"  # never a normal price of the test feed (those stay near 100,000)
FEED_INTERVAL_S = 0.1  # the pace of the test's feed, as a relay publishes
HISTORY_BASE, LIVE_BASE = 99_000, 100_000  # history prices before the server starts
PLAIN = re.compile(r"\d+(\.\d*[1-9])?")  # a price on the wire: no exponent, no trailing 0
PEEK_FULL = default_catalogue().mode("standard").rules.peek.meter_max


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class TestFeed:
    """Publishes ticks to the symbol's stream as the relay does; `price` is the next one."""

    __test__ = False

    def __init__(self, redis_url: str) -> None:
        self.client = aredis.Redis.from_url(redis_url)
        self.k = 0
        self.last_ms = 0
        self.price: str | None = None  # None: the normal walk

    def next_price(self, base: int) -> str:
        self.k += 1
        return self.price or f"{base + (self.k * 7) % 50}.{self.k % 10}"

    async def publish(self, at_ms: int, base: int = LIVE_BASE) -> None:
        at_ms = max(at_ms, self.last_ms + 1)
        self.last_ms = at_ms
        tick = FeedTick(SYMBOL, Decimal(self.next_price(base)), at_ms, at_ms, "synthetic", 0)
        await self.client.xadd(
            keys.feed_stream(SYMBOL), encode_tick(tick, "test"), id=tick.stream_id
        )

    async def history(self, ms: int) -> None:
        now = wall_ms()
        for at in range(now - ms, now, int(FEED_INTERVAL_S * 1000)):
            await self.publish(at, HISTORY_BASE)

    async def run(self) -> None:
        while True:
            await self.publish(wall_ms())
            await asyncio.sleep(FEED_INTERVAL_S)


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    """The packaged modes, with a short price delay and a Peek Meter full in 2 s."""
    text = resources.files("tradearena").joinpath("modes.toml").read_text(encoding="utf-8")
    text = text.replace("price_delay_ms = 5000", f"price_delay_ms = {DELAY_MS}")
    text = text.replace("refill_per_s = 2\n", "refill_per_s = 50\n")
    path = tmp_path / "modes.toml"
    path.write_text(text)
    return path


@pytest.fixture
def server(tmp_path: Path, redis_url: str, catalogue: Path) -> Iterator[MatchServerProcess]:
    proc = MatchServerProcess(
        tmp_path,
        redis_url,
        MATCH,
        PLAYERS,
        env_extra={
            "TRADEARENA_FEED_SOURCE": "relay",
            "TRADEARENA_SYMBOL": SYMBOL,
            "TRADEARENA_CATALOGUE": str(catalogue),
            "TRADEARENA_DURATION_MS": "600000",
            "TRADEARENA_SNAPSHOT_EVERY_ENTRIES": "25",  # a restore is snapshot + tail
        },
    )
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def feed(redis_url: str) -> AsyncIterator[TestFeed]:
    f = TestFeed(redis_url)
    yield f
    await f.client.aclose()


@contextlib.asynccontextmanager
async def running(feed: TestFeed) -> AsyncIterator[None]:
    task = asyncio.create_task(feed.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def values(candle: dict[str, Any]) -> set[str]:
    return {candle[k] for k in "ohlc"}


def check_shape(candles: dict[str, Any]) -> list[dict[str, Any]]:
    assert candles["interval"] == "1s"
    items: list[dict[str, Any]] = candles["items"]
    assert items
    times = [c["t"] for c in items]
    assert times == sorted(set(times))
    for raw in items:
        c = parse(raw)
        assert c.t % 1000 == 0
        assert c.n >= 1
        assert c.low <= min(c.o, c.c) <= max(c.o, c.c) <= c.h
        assert all(PLAIN.fullmatch(raw[k]) for k in "ohlc"), raw
    return items


def logged_prices(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url)
    try:
        rows = [json.loads(r) for r in client.lrange(keys.match_log(MATCH), 0, -1)]
    finally:
        client.close()
    return [r["data"]["price"] for r in rows if r["kind"] == "price"]


async def test_sync_candles_hold_official_prices_only_and_agree_with_the_ticks(
    server: MatchServerProcess, feed: TestFeed, redis_url: str
) -> None:
    await feed.history(4000)
    alice, bob = MatchClient(server, "alice"), MatchClient(server, "bob")
    async with running(feed):
        await asyncio.to_thread(server.start)
        await alice.connect()
        # A fresh match already has candles: the feed history it took at start.
        first = check_shape((await alice.sync())["candles"])
        assert Decimal(first[0]["o"]) < LIVE_BASE
        await bob.connect()
        await alice.wait_for("phase", lambda d: d["phase"] == "live")

        async def peek_ready() -> bool:
            state = await alice.sync()
            return bool(state["peek_meter"] == PEEK_FULL)

        await eventually(peek_ready, within=10)
        feed.price = DISTINCT

        async def distinct_logged() -> bool:
            return DISTINCT in await asyncio.to_thread(logged_prices, redis_url)

        await eventually(distinct_logged, within=5)
        peek = await alice.act(type="peek", client_order_id="peek-1")
        assert (peek["ok"], peek["price"]) == (True, DISTINCT)  # the live price, for a Peek
        for player in (alice, bob):
            state = await player.sync()
            items = check_shape(state["candles"])
            assert state["official_price"] != DISTINCT, "the check ran after the delay"
            assert not any(DISTINCT in values(c) for c in items)
            assert max(Decimal(c["h"]) for c in items) < Decimal(DISTINCT)
            assert items[-1]["c"] == state["official_price"]
        assert not any(event == "peek" for event, _ in bob.events)

        # Once official, the distinctive price is in the candles like any other.
        await alice.wait_for("tick", lambda d: d["price"] == DISTINCT, within=DELAY_MS / 1000 + 5)
        state = await alice.sync()
        items = check_shape(state["candles"])
        assert items[-1]["c"] == DISTINCT
        await alice.wait_for("tick", lambda d: d["at"] >= items[-1]["t"])

    # Every closed candle after alice's first tick is exactly the ticks she received.
    ticks = [d for e, d in alice.events if e == "tick"]
    seqs = [t["seq"] for t in ticks]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a tick was held back"
    by_second: dict[int, list[Decimal]] = {}
    for t in ticks:
        by_second.setdefault(t["at"] - t["at"] % 1000, []).append(Decimal(t["price"]))
    first_second = min(by_second)
    compared = 0
    for raw in items[:-1]:
        if raw["t"] <= first_second:
            continue  # she connected during it (or before)
        prices = by_second[raw["t"]]
        expected = Candle(raw["t"], prices[0], max(prices), min(prices), prices[-1], len(prices))
        assert parse(raw) == expected
        compared += 1
    assert compared >= 3  # the seconds from the Peek to the official distinctive price
    for p in (alice, bob):
        await p.close()


async def test_after_a_kill_and_restore_sync_sends_the_same_candles(
    server: MatchServerProcess, feed: TestFeed, redis_url: str
) -> None:
    await feed.history(4000)
    alice, bob = MatchClient(server, "alice"), MatchClient(server, "bob")
    async with running(feed):
        await asyncio.to_thread(server.start)
        await alice.connect()
        await bob.connect()
        await alice.wait_for("phase", lambda d: d["phase"] == "live")
        await alice.next_ticks(30)  # several seconds of candles, and snapshots
        before = check_shape((await alice.sync())["candles"])
        assert len(before) >= 4
        server.signal(signal.SIGKILL)
        assert await asyncio.to_thread(server.wait) == -signal.SIGKILL
        await asyncio.to_thread(server.start)  # the same match from the log in Redis
        for p in (alice, bob):
            await p.close()
        alice2 = MatchClient(server, "alice")
        await alice2.connect()
        after = {c["t"]: c for c in check_shape((await alice2.sync())["candles"])}
        await alice2.close()
    for candle in before[:-1]:
        assert after[candle["t"]] == candle
    # The one still forming at the kill may have gained the prices then in the delay line.
    forming, now = before[-1], after[before[-1]["t"]]
    assert (now["o"], now["n"] >= forming["n"]) == (forming["o"], True)
    restored = [json.loads(x) for x in server.logs().splitlines() if '"match restored"' in x]
    assert restored
    assert restored[0]["from_snapshot_at"] > 0
