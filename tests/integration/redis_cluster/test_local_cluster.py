"""The test cluster itself: a real three-shard Redis Cluster whose failover works."""

from __future__ import annotations

import asyncio

from tradearena import redisconn
from tradearena.testing.redis_cluster import LocalRedisCluster


def test_cluster_url_gives_a_cluster_client_that_routes_by_slot(
    redis_cluster: LocalRedisCluster, cluster_url: str
) -> None:
    assert redisconn.is_cluster_url(cluster_url)
    client = redisconn.connect_sync(cluster_url)
    assert redisconn.is_cluster(client)
    try:
        for i in range(30):
            client.set(f"k{i}", i)
        primaries = {redis_cluster.primary_for(f"k{i}").address for i in range(30)}
        assert len(primaries) == 3  # thirty keys land on every shard
        assert int(client.get("k7") or 0) == 7
    finally:
        client.close()


def test_killed_primary_is_replaced_and_its_replicated_writes_survive(
    redis_cluster: LocalRedisCluster, cluster_url: str
) -> None:
    key = "ta:match:{failover}:log"

    async def scenario() -> list[bytes]:
        client = redisconn.connect(cluster_url)
        try:
            await client.rpush(key, b"a", b"b")
            primary = redis_cluster.primary_for(key)
            with primary.client() as direct:
                # WAIT on the writer's own connection: both entries are on the replica.
                direct.rpush(key, b"c")
                assert direct.execute_command("WAIT", 1, 5000) == 1
            redis_cluster.kill(primary)
            promoted = redis_cluster.wait_failover(key, primary)
            assert promoted.address != primary.address
            await client.rpush(key, b"d")  # the client follows the new primary
            return list(await client.lrange(key, 0, -1))
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == [b"a", b"b", b"c", b"d"]
