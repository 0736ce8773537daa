"""`tradearena up` has hours of candles the moment it is ready (the relay backfills its
cold stream), and what the candles API returns while the relay publishes live prices
never closes later than the official price of the slowest format."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import redis

from lobby.market.candles_view import fairness_cap_ms
from tradearena.contracts import keys
from tradearena.contracts.candles import INTERVAL_MS, CandleInterval
from tradearena.modes import default_catalogue
from tradearena.testing.platform import UpProcess

CAP_MS = fairness_cap_ms(default_catalogue())
URL = "/api/v1/symbols/BTCUSDT/candles"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def candles(session: aiohttp.ClientSession, base: str, **params: str) -> dict[str, Any]:
    async with session.get(base + URL, params=params) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


async def test_up_has_hours_of_candles_at_once_and_never_serves_past_the_cap(
    data_dir: Path,
) -> None:
    up = UpProcess(data_dir / "var")
    up.start()
    try:
        ready = now_ms()
        async with aiohttp.ClientSession() as session:
            m1 = await candles(session, up.url, interval="1m", limit="1000")
            s1 = await candles(session, up.url, interval="1s", limit="1000")
            first = await candles(session, up.url, interval="1m", limit="1", **{"from": "0"})
            # Six hours of 1 m candles and the last hour of 1 s ones, right after READY.
            assert len(m1["candles"]) >= 350
            assert first["candles"][0]["t"] <= ready - 5 * 3600 * 1000
            assert m1["candles"][-1]["t"] >= ready - CAP_MS - 3 * 60_000
            assert len(s1["candles"]) == 1000  # an hour of them was backfilled
            assert s1["candles"][0]["t"] <= ready - 15 * 60_000

            # Fairness while the relay publishes live prices.
            served_close = until = 0
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                for interval in CandleInterval:
                    body = await candles(session, up.url, interval=interval.value, limit="5")
                    answered = now_ms()
                    step = INTERVAL_MS[interval]
                    assert body["until"] <= answered - CAP_MS
                    assert all(c["t"] + step <= body["until"] for c in body["candles"])
                    if interval is CandleInterval.S1:
                        served_close = max(served_close, body["candles"][-1]["t"] + step)
                        until = body["until"]
        client = redis.Redis.from_url(up.redis_url)
        try:
            newest = client.xrevrange(keys.candles("BTCUSDT", "1s"), count=1)
        finally:
            client.close()
        assert int(newest[0][0].decode().split("-")[0]) + 1000 > until  # the cap held some back
        assert until - served_close < 2000  # and served up to it
    finally:
        assert up.stop() == 0
