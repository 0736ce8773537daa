"""The upgrade test's feed recorder on a real Redis: what `gap_report` says about a gap
(who published either side, and when the lease changed hands), so a failed rollout
check tells a handover from one publisher's pause and a release from an expiry."""

from __future__ import annotations

import asyncio
import time

import redis

from tradearena.contracts import keys
from tradearena.testing.rollout_watch import FeedRecorder
from tradearena.testing.waiting import eventually

SYMBOL = "BTCUSDT"


async def test_the_report_names_the_publishers_and_the_lease_changes_at_the_gap(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stream, lease = keys.feed_stream(SYMBOL), keys.feed_leader(SYMBOL)
    base = int(time.time() * 1000)

    def tick(n: int, relay: str) -> None:
        client.xadd(stream, {"relay": relay}, id=f"{base + n * 250}-{n}")

    try:
        client.set(lease, "relay-a:1")
        with FeedRecorder(redis_url, SYMBOL, lease_poll_s=0.01) as feed:
            await eventually(lambda: _async(holders(feed) == ["relay-a:1"]))
            for n in range(3):
                tick(n, "relay-a")
            await eventually(lambda: _async(len(feed.ticks) == 3))
            client.delete(lease)  # released...
            await eventually(lambda: _async(holders(feed)[-1] is None))
            client.set(lease, "relay-b:2")  # ...and taken
            await eventually(lambda: _async(holders(feed)[-1] == "relay-b:2"))
            tick(3, "relay-b")
            await eventually(lambda: _async(len(feed.ticks) == 4))
        report = feed.gap_report()
    finally:
        client.close()
    assert [relay for _, _, relay in feed.ticks] == ["relay-a", "relay-a", "relay-a", "relay-b"]
    assert feed.largest_gaps_ms()[0] == 250
    assert f"-2 by relay-a then {base + 750}-3 by relay-b" in report, report
    changes = report.split("lease holder changes from the last tick before it: ")[1]
    assert "(none)" in changes and "relay-b:2" in changes, report
    assert changes.index("(none)") < changes.index("relay-b:2"), report


def holders(feed: FeedRecorder) -> list[str | None]:
    return [holder for _, holder in feed.leases]


async def _async(value: bool) -> bool:
    await asyncio.sleep(0)
    return value
