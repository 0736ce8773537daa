"""One reader per symbol, many matches: history first, then every tick once, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

from matchserver.feed.hub import FeedHub
from matchserver.feed.sources import FeedTick

NOW = 100_000


def tick(slot: int) -> FeedTick:
    return FeedTick("BTCUSDT", Decimal(100 + slot), slot * 1000, slot * 1000, "test", slot)


def hub(history_ms: int = 5000) -> FeedHub:
    async def nothing() -> AsyncIterator[FeedTick]:
        return
        yield

    return FeedHub("BTCUSDT", nothing, history_ms, clock=lambda: NOW)


async def take(ticks: AsyncIterator[FeedTick], n: int) -> list[int]:
    return [(await anext(ticks)).seq for _ in range(n)]


async def test_a_subscriber_gets_the_history_then_each_new_tick_once() -> None:
    h = hub()
    for slot in range(90, 100):  # 90..94 are older than the 5 s kept
        h.publish(tick(slot))
    assert [t.seq for t in h.history] == [95, 96, 97, 98, 99]
    early = h.ticks()
    assert await take(early, 5) == [95, 96, 97, 98, 99]
    h.publish(tick(100))
    late = h.ticks()  # joins later: the same history plus what came since
    assert await take(late, 6) == [95, 96, 97, 98, 99, 100]
    h.publish(tick(99))  # not newer than the newest: never handed out
    h.publish(tick(101))
    assert await take(early, 2) == [100, 101]
    assert await take(late, 1) == [101]
    assert len(h.subscribers) == 2
    await early.aclose()
    assert len(h.subscribers) == 1


async def test_a_failing_reader_is_started_again_and_repeats_nothing() -> None:
    reads = 0

    async def reader() -> AsyncIterator[FeedTick]:
        nonlocal reads
        reads += 1
        for slot in range(1, 4):  # each read starts with the same history
            yield tick(slot + (reads - 1) * 2)
        if reads == 1:
            raise ConnectionError("upstream gone")
        await asyncio.Event().wait()

    h = FeedHub("BTCUSDT", reader, 1_000_000, clock=lambda: NOW, retry_s=0)
    ticks = h.ticks()
    h.start()
    try:
        assert await asyncio.wait_for(take(ticks, 5), 5) == [1, 2, 3, 4, 5]
        assert (reads, h.failures) == (2, 1)
        assert h.warm.is_set()
    finally:
        await h.close()
