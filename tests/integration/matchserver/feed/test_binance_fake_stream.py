"""The Binance client against a local WebSocket server that speaks Binance's stream protocol.

The server (`tradearena.testing.fake_binance`, aiohttp) sends combined-stream frames
exactly as Binance does; each test scripts what it does per connection:
trades, silence, pings, malformed frames, cuts, a shutdown event, refusals.
Tests wait for events, not for time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D

import pytest

from matchserver.feed.binance import BinanceConfig, BinanceSource
from matchserver.feed.sources import FeedTick
from tradearena.testing.fake_binance import (
    T0,
    Conn,
    FakeBinance,
    agg_trade,
    fake_binance,
    hold,
    kline,
)


@contextlib.asynccontextmanager
async def consume(source: BinanceSource) -> AsyncIterator[asyncio.Queue[FeedTick]]:
    queue: asyncio.Queue[FeedTick] = asyncio.Queue()

    async def pump() -> None:
        async with contextlib.aclosing(source.ticks()) as ticks:
            async for tick in ticks:
                queue.put_nowait(tick)

    task = asyncio.create_task(pump())
    try:
        yield queue
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def take(queue: asyncio.Queue[FeedTick], n: int, within: float = 20) -> list[FeedTick]:
    async with asyncio.timeout(within):
        return [await queue.get() for _ in range(n)]


async def until(condition: Callable[[], bool], within: float = 20) -> None:
    """Poll a condition with a deadline (for state that has no event to await)."""
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


def config(url: str, **overrides: int) -> BinanceConfig:
    values = {
        "stale_after_ms": 10_000,
        "backoff_base_ms": 10,
        "backoff_cap_ms": 50,
        "breaker_threshold": 100,
        "breaker_open_ms": 100,
    } | overrides
    return BinanceConfig(base_url=url, **values)  # type: ignore[arg-type]


async def test_trades_arrive_from_the_combined_stream() -> None:
    async def script(conn: Conn) -> None:
        for frame in (kline(1), agg_trade(1, "100000.10"), agg_trade(2, "100000.20")):
            await conn.ws.send_str(frame)
        await conn.ws.send_str(agg_trade(3, "5.0", symbol="ETHUSDT"))  # not ours
        await conn.ws.send_str(agg_trade(4, "100000.40"))
        await hold(conn)

    fake = FakeBinance([script])
    async with fake_binance(fake) as url:
        source = BinanceSource("BTCUSDT", config(url))
        async with consume(source) as queue:
            ticks = await take(queue, 3)
    assert fake.conns[0].query == "streams=btcusdt@aggTrade/btcusdt@kline_1s"
    assert [(t.seq, t.price, t.event_ms) for t in ticks] == [
        (1, D("100000.10"), T0 + 1),
        (2, D("100000.20"), T0 + 2),
        (4, D("100000.40"), T0 + 4),
    ]
    assert all(t.source == "binance" and t.symbol == "BTCUSDT" for t in ticks)
    assert source.stats.malformed == 0 and source.connections == 1


async def test_malformed_frames_are_counted_and_skipped() -> None:
    async def script(conn: Conn) -> None:
        await conn.ws.send_str(agg_trade(1))
        await conn.ws.send_str("{not json")
        await conn.ws.send_bytes(b"\x00\x01\x02")
        await conn.ws.send_str(
            json.dumps({"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade"}})
        )
        await conn.ws.send_str(agg_trade(2, price="-5"))
        await conn.ws.send_str(agg_trade(3))
        await hold(conn)

    events: list[str] = []
    fake = FakeBinance([script])
    async with fake_binance(fake) as url:
        source = BinanceSource("BTCUSDT", config(url), on_event=events.append)
        async with consume(source) as queue:
            ticks = await take(queue, 2)
    assert [t.seq for t in ticks] == [1, 3]
    assert source.stats.malformed == 4 and events.count("malformed") == 4
    assert source.connections == 1  # never a reason to drop the connection


async def test_pings_are_answered_with_their_payload_within_five_messages_per_second() -> None:
    async def script(conn: Conn) -> None:
        await conn.ws.ping(b"first")
        await asyncio.wait_for(conn.pong_event.wait(), 10)
        await asyncio.sleep(1.1)  # let the client's outgoing budget refill completely
        for i in range(12):
            await conn.ws.ping(f"burst-{i}".encode())
        await conn.ws.send_str(agg_trade(1))  # processed after every ping above
        await hold(conn)

    fake = FakeBinance([script])
    async with fake_binance(fake) as url:
        source = BinanceSource("BTCUSDT", config(url))
        async with consume(source) as queue:
            await take(queue, 1)  # every ping before it was handled by now
            assert source.pongs_sent + source.pings_unanswered == 13
            # The pongs are on their way to the server.
            await until(lambda: len(fake.conns[0].pongs) >= source.pongs_sent)
            pongs = list(fake.conns[0].pongs)
    assert pongs[0] == b"first"
    burst = pongs[1:]
    assert 5 <= len(burst) <= 6  # a full bucket of 5, perhaps one refilled meanwhile
    assert burst[:5] == [f"burst-{i}".encode() for i in range(5)]
    assert source.pings_unanswered == 12 - len(burst)


async def test_a_cut_connection_reconnects_and_never_repeats_a_trade() -> None:
    async def first(conn: Conn) -> None:
        for a in (1, 2, 3):
            await conn.ws.send_str(agg_trade(a))
        await conn.ws.close()

    async def second(conn: Conn) -> None:
        for a in (2, 3, 4, 5):  # overlaps what the first connection delivered
            await conn.ws.send_str(agg_trade(a))
        await hold(conn)

    events: list[str] = []
    fake = FakeBinance([first, second])
    async with fake_binance(fake) as url:
        source = BinanceSource("BTCUSDT", config(url), on_event=events.append)
        async with consume(source) as queue:
            ticks = await take(queue, 5)
    assert [t.seq for t in ticks] == [1, 2, 3, 4, 5]
    assert source.connections == 2 and source.stats.reconnects == 1 and "reconnect" in events


async def test_silence_is_reported_stale_and_forces_a_reconnect() -> None:
    async def silent(conn: Conn) -> None:
        await conn.ws.send_str(agg_trade(1))
        while not conn.client_closed.is_set():  # pings are not data: still stale
            with contextlib.suppress(ConnectionError):
                await conn.ws.ping(b"")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.client_closed.wait(), 0.1)

    async def talkative(conn: Conn) -> None:
        await conn.ws.send_str(agg_trade(2))
        await hold(conn)

    events: list[str] = []
    fake = FakeBinance([silent, talkative])
    async with fake_binance(fake) as url:
        source = BinanceSource("BTCUSDT", config(url, stale_after_ms=400), on_event=events.append)
        async with consume(source) as queue:
            ticks = await take(queue, 2)
            assert not source.stats.stale  # fresh again on the new connection
    assert [t.seq for t in ticks] == [1, 2]
    assert fake.conns[0].client_closed.is_set()  # the client hung up, not the server
    assert source.stats.stale_events == 1 and events.index("stale") < events.index("reconnect")


async def test_connections_are_renewed_before_the_maximum_age() -> None:
    counter = iter(range(1, 10_000))

    async def streaming(conn: Conn) -> None:
        while not conn.client_closed.is_set():
            with contextlib.suppress(ConnectionError):
                await conn.ws.send_str(agg_trade(next(counter)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.client_closed.wait(), 0.02)

    fake = FakeBinance([streaming])
    async with fake_binance(fake) as url:
        source = BinanceSource("BTCUSDT", config(url, max_connection_age_ms=300))
        async with consume(source) as queue:
            await fake.connection(3)
            ticks = [queue.get_nowait() for _ in range(queue.qsize())]
    assert all(c.client_closed.is_set() for c in fake.conns[:3])  # closed by the client
    seqs = [t.seq for t in ticks]
    assert seqs == sorted(set(seqs)) and len(seqs) > 10
    assert source.stats.stale_events == 0 and source.breaker.failures == 0


async def test_a_server_shutdown_event_means_reconnect_now() -> None:
    async def shutting_down(conn: Conn) -> None:
        await conn.ws.send_str(agg_trade(1))
        await conn.ws.send_str(json.dumps({"e": "serverShutdown", "E": T0 + 5}))
        await hold(conn)

    async def fresh(conn: Conn) -> None:
        await conn.ws.send_str(agg_trade(2))
        await hold(conn)

    fake = FakeBinance([shutting_down, fresh])
    async with fake_binance(fake) as url:
        # A huge backoff would show: the shutdown reconnect must not wait for it.
        source = BinanceSource(
            "BTCUSDT", config(url, backoff_base_ms=60_000, backoff_cap_ms=60_000)
        )
        async with consume(source) as queue:
            ticks = await take(queue, 2)
    assert [t.seq for t in ticks] == [1, 2] and fake.conns[0].client_closed.is_set()


async def test_refusals_back_off_open_the_breaker_then_recover() -> None:
    async def ok(conn: Conn) -> None:
        await conn.ws.send_str(agg_trade(7))
        await hold(conn)

    fake = FakeBinance([ok], refuse_first=4)
    async with fake_binance(fake) as url:
        source = BinanceSource("BTCUSDT", config(url, breaker_threshold=3, breaker_open_ms=300))
        async with consume(source) as queue:
            saw_open = False
            async with asyncio.timeout(20):
                while queue.empty():
                    saw_open = saw_open or source.stats.breaker_open
                    await asyncio.sleep(0.005)
            tick = queue.get_nowait()
    assert saw_open
    assert tick.seq == 7 and fake.attempts == 5 and source.connections == 1
    assert source.breaker.failures == 0  # closed again by the first data


async def test_connection_attempts_stop_at_the_local_limit() -> None:
    fake = FakeBinance([hold], refuse_first=1_000)
    async with fake_binance(fake) as url:
        source = BinanceSource(
            "BTCUSDT", config(url, attempts_per_window=4, attempt_window_ms=600_000)
        )
        async with consume(source):
            await until(lambda: fake.attempts >= 4)
            await asyncio.sleep(0.5)  # time for many more attempts, were they allowed
    assert fake.attempts == 4 and source.connections == 0


@pytest.mark.parametrize("streams", [("aggTrade",), ("aggTrade", "kline_1s", "trade")])
async def test_the_configured_streams_are_requested(streams: tuple[str, ...]) -> None:
    fake = FakeBinance([hold])
    async with fake_binance(fake) as url:
        source = BinanceSource("ETHUSDT", BinanceConfig(base_url=url, streams=streams))
        async with consume(source):
            conn = await fake.connection(0)
    assert conn.query == "streams=" + "/".join(f"ethusdt@{s}" for s in streams)
