"""Players connected, in the status hash: coalesced to one write per interval, the newest
count always written last."""

from __future__ import annotations

import asyncio

from matchserver.presence import Presence


async def test_a_burst_is_one_write_now_and_one_with_the_newest_count_later() -> None:
    written: list[tuple[int, int]] = []
    changed = asyncio.Event()

    async def write(connected: int, players: int) -> None:
        written.append((connected, players))
        changed.set()

    presence = Presence(write, interval_ms=200, label="m-1")
    presence.update(0, 10)
    await asyncio.wait_for(changed.wait(), 2)
    changed.clear()
    for n in range(1, 11):  # ten connects within the interval
        presence.update(n, 10)
    await asyncio.wait_for(changed.wait(), 2)
    assert written == [(0, 10), (10, 10)]
    presence.update(10, 10)  # no change: nothing written
    await asyncio.sleep(0)
    assert presence.writes == 2
    await presence.close()


async def test_a_failed_write_is_tried_again() -> None:
    calls: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def flaky(connected: int, players: int) -> None:
        calls.append((connected, players))
        if len(calls) == 1:
            raise ConnectionError("redis blip")
        done.set()

    presence = Presence(flaky, interval_ms=10)
    presence.update(1, 2)
    await asyncio.wait_for(done.wait(), 2)
    assert calls == [(1, 2), (1, 2)]
    assert presence.writes == 1
