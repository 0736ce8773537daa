"""MatchStore's durable writes on a real Redis Cluster: WAIT on a client of the slot's
primary, through a failover; every primary's replicas for the readiness check."""

from __future__ import annotations

import asyncio

from matchserver.durability import ReplicaCheck, ReplicaWaiter, WaitPolicy
from matchserver.engine.log import ACTION, LogEntry
from matchserver.store import MatchStore
from tradearena import redisconn
from tradearena.contracts import keys
from tradearena.testing.redis_cluster import LocalRedisCluster
from tradearena.testing.waiting import eventually

MID = "m-durable"


def entries(first: int, n: int) -> list[LogEntry]:
    return [
        LogEntry(seq, 1000 + seq, ACTION, "alice", {"client_order_id": f"c-{seq}"})
        for seq in range(first, first + n)
    ]


async def close(store: MatchStore) -> None:
    await store.waiter.aclose()
    await store.redis.aclose()


def replica_llen(cluster: LocalRedisCluster, key: str) -> int:
    """LLEN on the replica of `key`'s primary, as the primary itself reports it (CLUSTER
    SLOTS of another node may not list it yet)."""
    with cluster.primary_for(key).client() as c:
        info = c.info("replication")
    with cluster.node(f"127.0.0.1:{info['slave0']['port']}").client() as c:
        c.execute_command("READONLY")
        return int(c.llen(key))


async def test_replica_check_sees_every_primary_s_replica(cluster_url: str) -> None:
    client = redisconn.connect(cluster_url)
    try:
        # A primary counts its new replica once it is online (its first sync acknowledged).
        await eventually(ReplicaCheck(client, 1, ttl_s=0).ok)
        check = ReplicaCheck(client, 2)
        assert not await check.ok()
        assert check.replicas == 1
    finally:
        await client.aclose()


async def test_cluster_append_waits_on_the_slot_primary_and_survives_a_failover(
    redis_cluster: LocalRedisCluster, cluster_url: str
) -> None:
    client = redisconn.connect(cluster_url)
    store = MatchStore(client, MID, ReplicaWaiter(client, WaitPolicy(1, 30_000)))
    log_key = keys.match_log(MID)
    try:
        assert await store.append(entries(1, 3), 0) == 3
        assert replica_llen(redis_cluster, log_key) == 3  # WAIT returned: it has them
        primary = redis_cluster.primary_for(log_key)
        redis_cluster.kill(primary)
        # The write waits: the promoted replica has no replica of its own until the
        # killed node is back (as a managed service replaces a failed node).
        pending = asyncio.create_task(store.append(entries(4, 2), 3))
        await asyncio.to_thread(redis_cluster.wait_failover, log_key, primary)
        assert not pending.done()
        await asyncio.to_thread(redis_cluster.restart, primary)
        assert await asyncio.wait_for(pending, 30) == 5
        assert [e.seq for e in await store.load_log()] == [1, 2, 3, 4, 5]
        assert replica_llen(redis_cluster, log_key) == 5
        # Published exactly once. A try whose reply was lost to the failover's aftermath
        # is retried, and the retry finds it published (False): the count is the check.
        result = '{"r": "m-durable"}'
        await store.publish_result(result)
        assert await store.result_published()
        stream = await client.xrange(keys.RESULTS_STREAM)
        assert [fields[b"result"] for _, fields in stream].count(result.encode()) == 1
    finally:
        await close(store)
