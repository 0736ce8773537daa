"""The shared phase-stream reader on a real Redis Cluster (per-slot reads in one
pipeline), through both of its users: the local runtimes' PhaseFollower and the
operator's AckWaiter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from match_operator.acks import AckWaiter
from tradearena.contracts import keys
from tradearena.contracts.phases import ServerPhase
from tradearena.launcher.tracking import PhaseFollower
from tradearena.orchestration.phases import Event
from tradearena.orchestration.phasewatch import POLL_S, PhaseWatch

from .conftest import until


async def test_follower_reads_every_match_over_many_slots(rc: RedisCluster) -> None:
    follower = PhaseFollower(rc)
    assert follower.watch.cluster
    count = 200
    assert len({key_slot(keys.match_phases(f"m-{n}").encode()) for n in range(count)}) > 150
    seen: dict[str, list[Event]] = {}
    done = asyncio.Event()

    def handler(match_id: str) -> Callable[[Event], Awaitable[None]]:
        async def on_event(event: Event) -> None:
            seen.setdefault(match_id, []).append(event)
            if sum(len(v) for v in seen.values()) == 2 * count:
                done.set()

        return on_event

    try:
        # Reported before it is followed: read from the start of its stream.
        await rc.xadd(keys.match_phases("m-0"), {"phase": str(ServerPhase.READY)})
        for n in range(count):
            await follower.follow(f"m-{n}", handler(f"m-{n}"))
        for n in range(1, count):
            await rc.xadd(keys.match_phases(f"m-{n}"), {"phase": str(ServerPhase.READY)})
        for n in range(count):
            await rc.xadd(keys.match_phases(f"m-{n}"), {"phase": str(ServerPhase.LIVE)})
        async with asyncio.timeout(15):
            await done.wait()
        assert all(seen[f"m-{n}"] == [Event.READY, Event.LIVE] for n in range(count))
        follower.unfollow("m-1")
        await rc.xadd(keys.match_phases("m-1"), {"phase": str(ServerPhase.FINISHED)})
        finished = asyncio.Event()
        await follower.follow("m-2", lambda e: _set_on(finished, e, Event.FINISHED))
        await rc.xadd(keys.match_phases("m-2"), {"phase": str(ServerPhase.FINISHED)})
        async with asyncio.timeout(5):
            await finished.wait()
        assert seen["m-1"] == [Event.READY, Event.LIVE]
    finally:
        await follower.close()
    assert not follower.watch.running


async def _set_on(flag: asyncio.Event, event: Event, wanted: Event) -> None:
    if event is wanted:
        flag.set()


async def test_ack_waits_wake_within_the_poll_interval(rc: RedisCluster) -> None:
    woken: asyncio.Queue[tuple[tuple[str, str], float]] = asyncio.Queue()

    async def on_report(key: tuple[str, str]) -> None:
        await woken.put((key, time.monotonic()))

    waiter = AckWaiter(rc, 2, on_report)
    try:
        for i in range(50):
            waiter.follow(("ns", f"m{i}"), f"m{i}", [ServerPhase.READY], timeout_s=10)
        await rc.xadd(keys.match_phases("m3"), {"phase": str(ServerPhase.LIVE)})  # not awaited
        latencies = []
        for i in range(50):
            written = time.monotonic()
            await rc.xadd(keys.match_phases(f"m{i}"), {"phase": str(ServerPhase.READY)})
            key, at = await asyncio.wait_for(woken.get(), 5)
            assert key == ("ns", f"m{i}")
            latencies.append(at - written)
        assert waiter.waiting == 0
        # Seen within the poll interval plus a round trip, not a timer's period.
        assert sorted(latencies)[len(latencies) // 2] < POLL_S + 0.1
        assert max(latencies) < 1
    finally:
        await waiter.close()


async def test_a_timed_out_follow_ends_and_nothing_is_read_when_idle(rc: RedisCluster) -> None:
    calls: list[str | None] = []

    async def handler(phase: str | None) -> bool:
        calls.append(phase)
        return False

    watch = PhaseWatch(rc, "idle-test", poll_s=0.01)
    try:
        watch.follow("m-x", handler, timeout_s=0.2)
        await rc.xadd(keys.match_phases("m-x"), {"phase": str(ServerPhase.READY)})
        await until(lambda: _zero(watch.count), within=5)  # ends at its deadline
        assert calls == [str(ServerPhase.READY)]
        await rc.xadd(keys.match_phases("m-x"), {"phase": str(ServerPhase.LIVE)})
        await asyncio.sleep(0.1)  # a read would have happened by now
        assert calls == [str(ServerPhase.READY)] and watch.running
    finally:
        await watch.close()


async def _zero(n: int) -> bool:
    return n == 0
