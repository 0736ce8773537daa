"""Allocation and the acknowledgement wait against a real Redis: Packed order, refusals
moving on, the cold start's own binding, adoption of a bound server, a burst of
concurrent allocators, and XREAD waking the reconcile on the server's report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from match_operator.acks import AckWaiter
from match_operator.allocator import Cold, allocate_match, dedicated
from match_operator.builders import Allocated
from match_operator.servers import ServerView
from tradearena.contracts import keys
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.phases import ServerPhase
from tradearena.contracts.pool import ServerState
from tradearena.orchestration import allocation

NS = "games"


class Directory:
    """The pool controller's view, from what the servers declared in Redis."""

    def __init__(self, redis: Redis, servers: dict[str, str]) -> None:
        self.redis = redis
        self.nodes = servers  # server -> node
        self.views: dict[str, ServerView] = {}

    async def refresh(self) -> None:
        for name, node in self.nodes.items():
            capacity, ready = await self.redis.hmget(
                keys.server_state(name), [ServerState.CAPACITY, ServerState.READY]
            )
            count = await self.redis.hlen(keys.server_matches(name))
            self.views[name] = ServerView(
                name,
                NS,
                "duel-blitz",
                name,
                node,
                7400,
                "http",
                ready == b"1",
                int(capacity or 0),
                count,
            )

    def candidates(self, namespace: str, spec: MatchSpec) -> list[ServerView]:
        return list(self.views.values()) if spec.format == "blitz" else []

    def server(self, namespace: str, name: str) -> ServerView | None:
        return self.views.get(name)

    def note_allocated(self, namespace: str, name: str, match_id: str) -> None:
        pass

    def note_released(self, namespace: str, name: str, match_id: str) -> None:
        pass


async def declare(redis: Redis, server: str, capacity: int, ready: int = 1) -> None:
    await redis.hset(
        keys.server_state(server),
        mapping={ServerState.CAPACITY: capacity, ServerState.READY: ready},
    )


def spec(match_id: str, fmt: str = "blitz") -> MatchSpec:
    return MatchSpec(match_id, "duel", fmt, 0, ("alice", "bob"))


@pytest.fixture
async def r(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_packed_first_then_the_next_on_refusal_then_cold_with_its_own_binding(
    r: Redis,
) -> None:
    await declare(r, "srv-a", 2)
    await declare(r, "srv-b", 2)
    await declare(r, "srv-c", 2, ready=0)  # not accepting
    directory = Directory(r, {"srv-a": "n1", "srv-b": "n2", "srv-c": "n2"})
    await r.hset(keys.server_matches("srv-b"), "earlier", "{}")
    await directory.refresh()
    first = await allocate_match(r, directory, NS, spec("m1"))
    assert isinstance(first, Allocated) and first.server == "srv-b"  # partly used first
    # The directory lags (srv-b looks as it was): the script refuses, the next one takes it.
    second = await allocate_match(r, directory, NS, spec("m2"))
    assert isinstance(second, Allocated) and second.server == "srv-a"
    assert await allocation.bound_server(r, "m2") == "srv-a"
    await directory.refresh()
    await allocate_match(r, directory, NS, spec("m3"))
    await directory.refresh()
    cold = await allocate_match(r, directory, NS, spec("m4"))
    assert isinstance(cold, Cold) and "no room" in cold.reason
    assert await allocation.bound_server(r, "m4") == dedicated("m4")
    again = await allocate_match(r, directory, NS, spec("m4"))  # a replica, later
    assert isinstance(again, Cold)
    unserved = await allocate_match(r, directory, NS, spec("m5", "sprint"))
    assert isinstance(unserved, Cold) and unserved.reason == "no pool serves duel/sprint"


async def test_a_bound_match_is_adopted_not_allocated_twice(r: Redis) -> None:
    await declare(r, "srv-a", 4)
    await declare(r, "srv-b", 4)
    directory = Directory(r, {"srv-a": "n1", "srv-b": "n1"})
    await directory.refresh()
    first = await allocate_match(r, directory, NS, spec("m1"))
    assert isinstance(first, Allocated) and not first.adopted
    again = await allocate_match(r, directory, NS, spec("m1"))  # a pass after a 409
    assert isinstance(again, Allocated) and again.adopted and again.server == first.server
    assert await r.hlen(keys.server_matches(first.server)) == 1
    assert await r.xlen(keys.server_inbox(first.server)) == 1  # woken once


async def test_a_burst_of_concurrent_allocators_never_overfills_nor_doubles_a_match(
    redis_url: str,
) -> None:
    clients = [Redis.from_url(redis_url) for _ in range(4)]
    try:
        await declare(clients[0], "srv-a", 5)
        await declare(clients[0], "srv-b", 5)
        directories = [Directory(c, {"srv-a": "n1", "srv-b": "n2"}) for c in clients]
        for d in directories:
            await d.refresh()  # every allocator sees both empty: the worst case
        names = [f"m{i}" for i in range(20)]
        outcomes = await asyncio.gather(
            *(
                allocate_match(clients[i % 4], directories[i % 4], NS, spec(name))
                for i, name in enumerate(names * 2)  # every match twice, by two allocators
            )
        )
        warm = {o.server for o in outcomes if isinstance(o, Allocated)}
        # Which servers fill depends on how the races fall (a match refused by a full
        # server while its other allocator holds the binding may go cold); what never
        # varies: no server over its capacity, no match on two servers, and both
        # allocators of a match agree on its one binding.
        assert "srv-a" in warm and warm <= {"srv-a", "srv-b"}
        hosted = {
            s: set(await clients[0].hkeys(keys.server_matches(s))) for s in ("srv-a", "srv-b")
        }
        assert all(len(v) <= 5 for v in hosted.values())
        assert not hosted["srv-a"] & hosted["srv-b"]
        for name, outcome in zip(names * 2, outcomes, strict=True):
            bound = await allocation.bound_server(clients[0], name)
            if isinstance(outcome, Allocated):
                assert bound == outcome.server  # both allocators of a match agree
            else:
                assert bound == dedicated(name)
    finally:
        for c in clients:
            await c.aclose()


async def test_the_ack_wait_wakes_on_the_servers_report(r: Redis) -> None:
    woken: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    async def on_report(key: tuple[str, str]) -> None:
        await woken.put(key)

    waiter = AckWaiter(r, 2, on_report)
    try:
        # Written before the wait began: counted (the stream is read from its start).
        await r.xadd(keys.match_phases("early"), {"phase": str(ServerPhase.READY)})
        waiter.follow((NS, "early"), "early", [ServerPhase.READY], timeout_s=5)
        assert await asyncio.wait_for(woken.get(), 2) == (NS, "early")

        for i in range(50):  # a burst: one reader follows every stream at once
            waiter.follow((NS, f"m{i}"), f"m{i}", [ServerPhase.READY], timeout_s=10)
        await r.xadd(keys.match_phases("m3"), {"phase": str(ServerPhase.LIVE)})  # not awaited
        began = time.monotonic()
        for i in range(50):
            await r.xadd(keys.match_phases(f"m{i}"), {"phase": str(ServerPhase.READY)})
        got = {await asyncio.wait_for(woken.get(), 5) for _ in range(50)}
        assert got == {(NS, f"m{i}") for i in range(50)}
        assert time.monotonic() - began < 5  # one read for the burst, not a turn each
        assert waiter.waiting == 0
    finally:
        await waiter.close()
