"""`GET /api/v1/symbols/{symbol}/candles` on a real Redis (and PostgreSQL, as the lobby
needs): pages, cache headers, problems, the rate limiter, and fairness: no candle
the API returns closes later than now minus the longest price delay of the
catalogue, even while a relay is publishing current prices."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from lobby.market.candles_view import fairness_cap_ms
from tradearena.contracts import keys
from tradearena.contracts.candles import INTERVAL_MS, Candle, CandleInterval, encode_candle
from tradearena.modes import default_catalogue
from tradearena.testing.lobby import Client
from tradearena.testing.relays import RelayCluster

SYMBOL = "BTCUSDT"
M1, S1 = CandleInterval.M1, CandleInterval.S1
CAP_MS = fairness_cap_ms(default_catalogue())
URL = f"/api/v1/symbols/{SYMBOL}/candles"
BACKFILL = "TRADEARENA_RELAY_BACKFILL_MS"
ClientFactory = Callable[..., AbstractAsyncContextManager[Client]]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
async def rds(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def store(rds: aioredis.Redis, interval: CandleInterval, opens: list[int]) -> None:
    async with rds.pipeline(transaction=False) as pipe:
        for k, t in enumerate(opens):
            price = Decimal(f"100000.{k % 100:02d}")
            candle = Candle(t, price, price + 1, price - 1, price, k + 1)
            pipe.xadd(keys.candles(SYMBOL, interval), encode_candle(candle), id=candle.stream_id)
        await pipe.execute()


async def get(client: Client, **params: Any) -> tuple[int, Mapping[str, str], Any]:
    resp = await client.get(URL, params={k: str(v) for k, v in params.items()})
    body = await resp.json(content_type=None) if resp.status != 304 else None
    return resp.status, resp.headers, body  # case-insensitive


async def test_pages_follow_next_from_and_old_pages_are_cached_long(
    lobby_client: Client, rds: aioredis.Redis
) -> None:
    now = now_ms()
    last = now - now % 60_000 - 120_000  # closed a minute ago at least: all visible
    opens = [last - 60_000 * k for k in range(179, -1, -1)]  # three hours
    await store(rds, M1, opens)
    seen: list[int] = []
    start: int | None = opens[0]
    pages = 0
    while start is not None:
        status, headers, body = await get(lobby_client, interval="1m", limit=50, **{"from": start})
        assert status == 200, body
        pages += 1
        assert body["symbol"] == SYMBOL and body["interval"] == "1m"
        assert all(c["t"] + 60_000 <= body["until"] for c in body["candles"])
        assert body["until"] <= now_ms() - CAP_MS
        seen += [c["t"] for c in body["candles"]]
        if body["next_from"] is not None:
            assert headers["Cache-Control"] == "public, max-age=86400"
            again = await lobby_client.get(
                URL,
                params={"interval": "1m", "limit": "50", "from": str(start)},
                headers={"If-None-Match": headers["ETag"]},
            )
            assert again.status == 304
        else:
            assert headers["Cache-Control"] == "public, max-age=1"
            assert "ETag" not in headers
        start = body["next_from"]
    assert pages == 4
    visible = opens
    assert seen == opens
    _, _, first = await get(lobby_client, interval="1m", **{"from": opens[0]})
    assert first["candles"][0] == {
        "t": opens[0],
        "o": "100000.00",
        "h": "100001.00",
        "l": "99999.00",
        "c": "100000.00",
        "n": 1,
    }
    # Without `from`: the newest `limit`, ending at the cap.
    status, headers, body = await get(lobby_client, interval="1m", limit=10)
    assert status == 200 and [c["t"] for c in body["candles"]] == visible[-10:]
    assert body["next_from"] is None and headers["Cache-Control"] == "public, max-age=1"
    # A window that `to` ends before the cap, followed by stored candles: final.
    status, headers, body = await get(
        lobby_client, interval="1m", **{"from": opens[0], "to": opens[5]}
    )
    assert [c["t"] for c in body["candles"]] == opens[:5]
    assert headers["Cache-Control"] == "public, max-age=86400" and "ETag" in headers


async def test_nothing_closing_after_the_cap_is_served_and_to_is_clamped(
    lobby_client: Client, rds: aioredis.Redis
) -> None:
    now = now_ms()
    second = now - now % 1000
    opens = [second - 1000 * k for k in range(30, -5, -1)]  # some even in the future
    await store(rds, S1, opens)
    status, _, body = await get(
        lobby_client, interval="1s", **{"from": opens[0], "to": now + 3_600_000}
    )
    assert status == 200
    served = [c["t"] for c in body["candles"]]
    assert served and all(t + 1000 <= body["until"] for t in served)
    assert body["until"] <= now_ms() - CAP_MS
    assert served == [t for t in opens if t + 1000 <= body["until"]]


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/api/v1/symbols/ETHUSDT/candles", {}, 404, "unknown_symbol"),
        (URL, {"interval": "5m"}, 422, "validation_failed"),
        (URL, {"limit": "0"}, 422, "validation_failed"),
        (URL, {"limit": "1001"}, 422, "validation_failed"),
        (URL, {"from": "-1"}, 422, "validation_failed"),
        (URL, {"from": "abc"}, 422, "validation_failed"),
        (URL, {"from": "2000", "to": "1000"}, 422, "invalid_range"),
        (URL, {"from": "1000", "to": "1000"}, 422, "invalid_range"),
        (URL, {"since": "1"}, 400, "unknown_parameter"),
    ],
)
async def test_bad_input_is_a_problem_with_a_stable_code(
    lobby_client: Client, path: str, params: dict[str, str], status: int, code: str
) -> None:
    resp = await lobby_client.get(path, params=params)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    assert (await resp.json(content_type=None))["code"] == code


async def test_the_rate_limiter_covers_it(lobby_client_factory: ClientFactory) -> None:
    async with lobby_client_factory(rate_limit_ip=3) as client:
        statuses = [(await client.get(URL)).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_fairness_with_a_relay_publishing_current_prices(
    lobby_client: Client, redis_url: str, tmp_path: Path
) -> None:
    """A relay publishes live synthetic prices (20 a second) and closes candles as they
    happen; whatever the API returns, at any moment, closes at or before the time of
    the official price of the format with the longest delay (now - delay)."""
    # Backfilled: ten minutes of history at once, so candles older than the cap exist.
    cluster = RelayCluster(redis_url, tmp_path / "logs", extra_env={BACKFILL: "600000"})
    try:
        cluster.wait_healthy(cluster.start("relay-1"))
        cluster.wait_for(
            lambda: int(cluster.last_id().split("-")[0]) > now_ms() - 1000, what="live ticks"
        )
        newest_close = last_until = 0
        deadline = time.monotonic() + 3
        checked = 0
        while time.monotonic() < deadline:
            for interval in (S1, M1):
                status, _, body = await get(lobby_client, interval=interval.value)
                answered = now_ms()
                assert status == 200
                step = INTERVAL_MS[interval]
                for candle in body["candles"]:
                    assert candle["t"] + step <= body["until"] <= answered - CAP_MS
                    checked += 1
                if interval is S1 and body["candles"]:
                    newest_close = max(newest_close, body["candles"][-1]["t"] + step)
                    last_until = body["until"]
            await asyncio.sleep(0.05)
        stored_newest = int(cluster.last_id().split("-")[0])
        newest_stored = cluster.redis.xrevrange(keys.candles(SYMBOL, S1), count=1)
        hidden_close = int(newest_stored[0][0].decode().split("-")[0]) + 1000
    finally:
        cluster.stop_all()
    assert checked > 0
    # Not vacuous: the store had candles the cap held back, and the API served right up
    # to the cap.
    assert hidden_close > last_until
    assert stored_newest - newest_close >= CAP_MS - 1000
    assert last_until - newest_close < 2000
