"""One reader for the phase streams of every match a local runtime follows (real Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from tradearena.contracts import keys
from tradearena.contracts.phases import ServerPhase
from tradearena.launcher.tracking import PhaseFollower
from tradearena.orchestration.phases import Event


async def test_hundreds_of_matches_are_followed_over_a_few_connections(redis_url: str) -> None:
    # Far more matches than connections: one blocking read serves them all.
    redis = Redis.from_url(redis_url, max_connections=4)
    follower = PhaseFollower(redis)
    seen: dict[str, list[Event]] = {}
    done, finished = asyncio.Event(), asyncio.Event()
    count = 300

    def handler(match_id: str) -> Callable[[Event], Awaitable[None]]:
        async def on_event(event: Event) -> None:
            seen.setdefault(match_id, []).append(event)
            if sum(len(v) for v in seen.values()) == 2 * count:
                done.set()
            if event is Event.FINISHED:
                finished.set()

        return on_event

    try:
        # One match reported before it is followed: read from the start of its stream.
        await redis.xadd(keys.match_phases("m-0"), {"phase": str(ServerPhase.READY)})
        for n in range(count):
            await follower.follow(f"m-{n}", handler(f"m-{n}"))
        for n in range(1, count):
            await redis.xadd(keys.match_phases(f"m-{n}"), {"phase": str(ServerPhase.READY)})
        for n in range(count):
            await redis.xadd(keys.match_phases(f"m-{n}"), {"phase": str(ServerPhase.LIVE)})
        async with asyncio.timeout(20):
            await done.wait()
        assert all(seen[f"m-{n}"] == [Event.READY, Event.LIVE] for n in range(count))
        # An unfollowed match is read no more; an unknown report is no event.
        follower.unfollow("m-1")
        await redis.xadd(keys.match_phases("m-1"), {"phase": str(ServerPhase.FINISHED)})
        await redis.xadd(keys.match_phases("m-2"), {"phase": "Exploded"})
        await redis.xadd(keys.match_phases("m-2"), {"phase": str(ServerPhase.FINISHED)})
        async with asyncio.timeout(20):
            await finished.wait()
        assert seen["m-1"] == [Event.READY, Event.LIVE]
        assert seen["m-2"] == [Event.READY, Event.LIVE, Event.FINISHED]
    finally:
        await follower.close()
        await redis.aclose()
    assert not follower.watch.running
