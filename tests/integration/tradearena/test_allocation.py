"""Binding matches to pool servers on a real Redis, with allocators racing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tradearena.contracts import keys
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.pool import Assignment, ServerState
from tradearena.orchestration import allocation


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def assignment(match_id: str) -> Assignment:
    return Assignment.of(MatchSpec(match_id, "duel", "blitz", 0, ("a", "b")), 1)


async def server(redis: Redis, server_id: str, capacity: int, ready: bool = True) -> None:
    await redis.hset(
        keys.server_state(server_id),
        mapping={ServerState.CAPACITY: capacity, ServerState.READY: "1" if ready else "0"},
    )


async def test_an_assignment_is_recorded_and_wakes_the_server(redis: Redis) -> None:
    await server(redis, "s1", 2)
    assert await allocation.allocate(redis, "s1", assignment("m1")) == allocation.ASSIGNED
    hosted = await allocation.hosted(redis, "s1")
    assert hosted == {"m1": assignment("m1")}
    inbox = await redis.xrange(keys.server_inbox("s1"))
    assert [fields[b"match_id"] for _, fields in inbox] == [b"m1"]
    assert await allocation.bound_server(redis, "m1") == "s1"
    # An allocator retrying the same binding is told it is done, and nothing doubles.
    assert await allocation.allocate(redis, "s1", assignment("m1")) == allocation.ASSIGNED
    assert len(await redis.xrange(keys.server_inbox("s1"))) == 1


async def test_a_full_or_unready_server_refuses_and_the_match_stays_unbound(
    redis: Redis,
) -> None:
    await server(redis, "s1", 1)
    await server(redis, "cold", 4, ready=False)
    assert await allocation.allocate(redis, "s1", assignment("m1")) == allocation.ASSIGNED
    assert await allocation.allocate(redis, "s1", assignment("m2")) == allocation.FULL
    assert await allocation.allocate(redis, "cold", assignment("m2")) == allocation.NOT_ACCEPTING
    assert await allocation.bound_server(redis, "m2") is None
    await redis.hset(keys.server_state("s1"), ServerState.DRAINING, "1")
    await redis.hdel(keys.server_matches("s1"), "m1")
    assert await allocation.allocate(redis, "s1", assignment("m3")) == allocation.NOT_ACCEPTING


async def test_racing_allocators_never_exceed_capacity_nor_bind_a_match_twice(
    redis: Redis,
) -> None:
    servers = ["s1", "s2", "s3"]
    for s in servers:
        await server(redis, s, 3)
    matches = [f"m{i}" for i in range(12)]
    # Every match is tried on every server at once, as several allocators would.
    outcomes = await asyncio.gather(
        *(allocation.allocate(redis, s, assignment(m)) for m in matches for s in servers)
    )
    assert 0 < outcomes.count(allocation.ASSIGNED) <= 9  # 3 servers x 3 slots
    # Allocators that lost a race try again: every slot ends up used, none twice.
    for m in matches:
        if await allocation.bound_server(redis, m) is None:
            for s in servers:
                if await allocation.allocate(redis, s, assignment(m)) == allocation.ASSIGNED:
                    break
    placed: dict[str, str] = {}
    for s in servers:
        hosted = await allocation.hosted(redis, s)
        assert len(hosted) <= 3
        for m in hosted:
            assert m not in placed, f"{m} on {placed.get(m)} and {s}"
            placed[m] = s
    assert len(placed) == 9
    for m in matches:
        assert await allocation.bound_server(redis, m) == placed.get(m)
