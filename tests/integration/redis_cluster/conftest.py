"""Fixtures of the Redis Cluster tests: an asyncio cluster client on the flushed
three-shard cluster (`cluster_url`), built the way every process builds it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio.cluster import RedisCluster

from tradearena import redisconn
from tradearena.testing.redis_cluster import LocalRedisCluster, Node


@pytest.fixture
async def rc(cluster_url: str) -> AsyncIterator[RedisCluster]:
    client = redisconn.connect(cluster_url)
    assert isinstance(client, RedisCluster)
    try:
        yield client
    finally:
        await client.aclose()


def replicate(cluster: LocalRedisCluster, key: str) -> None:
    """Until the replica of `key`'s primary has every write made so far to that shard
    (a write on a connection of our own, then WAIT on it: the replication stream is
    in order)."""
    primary = cluster.primary_for(key)
    with primary.client() as direct:
        direct.set(key + ":replicated", "1")
        assert direct.execute_command("WAIT", 1, 5000) == 1
        direct.delete(key + ":replicated")


async def fail_over(cluster: LocalRedisCluster, key: str) -> tuple[Node, Node]:
    """SIGKILL the primary serving `key` and wait (off the event loop) until its
    replica took the slot over: (killed, promoted)."""
    primary = cluster.primary_for(key)
    cluster.kill(primary)
    promoted = await asyncio.to_thread(cluster.wait_failover, key, primary)
    return primary, promoted


async def until(condition: Callable[[], Awaitable[bool]], within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.02)
