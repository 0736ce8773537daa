"""A match's durable state, its pool allocation and the lobby's rate limits on a real
Redis Cluster, through the components' own code (matches spread over every shard)."""

from __future__ import annotations

import asyncio
import json
import time

from redis.asyncio.cluster import RedisCluster

from lobby.http.ratelimit import Limiter
from lobby.watch import PlatformWatch, WatchMetrics
from matchserver.engine.log import LogEntry
from matchserver.store import MatchStore
from tradearena.contracts import keys
from tradearena.contracts.phases import ServerPhase
from tradearena.contracts.pool import INBOX_FIELD, Assignment, ServerState
from tradearena.orchestration import allocation
from tradearena.testing.redis_cluster import LocalRedisCluster

from .conftest import replicate

MATCHES = [f"m-{i}" for i in range(6)]


async def test_match_log_snapshot_status_and_result_publish_once(
    rc: RedisCluster, redis_cluster: LocalRedisCluster
) -> None:
    assert len({redis_cluster.primary_for(keys.match_log(m)).address for m in MATCHES}) > 1

    async def one(match_id: str) -> None:
        store = MatchStore(rc, match_id)
        header = await store.claim_header({"match_id": match_id, "mode": "duel"})
        assert (await store.claim_header({"match_id": "other"})) == header  # first one wins
        await store.append([LogEntry(1, 10, "join", "p1"), LogEntry(2, 11, "join", "p2")], 0)
        await store.append([LogEntry(3, 12, "trade", "p1", {"qty": 1})], 2)
        await store.save_snapshot(json.dumps({"at": 2}))
        await store.set_status(ServerPhase.READY, port=1234)  # hash + stream, one transaction
        await store.set_status(ServerPhase.LIVE)
        await store.set_presence(2, 2)
        assert [e.seq for e in await store.load_log()] == [1, 2, 3]
        assert await store.load_snapshot() == {"at": 2}
        status = await rc.hgetall(keys.match_status(match_id))
        assert status[b"phase"] == str(ServerPhase.LIVE).encode() and status[b"port"] == b"1234"
        phases = await rc.xrange(keys.match_phases(match_id))
        assert [f[b"phase"] for _, f in phases] == [
            str(ServerPhase.READY).encode(),
            str(ServerPhase.LIVE).encode(),
        ]
        result = json.dumps({"match_id": match_id})
        assert await store.publish_result(result, "00-abc-def-01") is True
        assert await store.publish_result(result) is False  # once, whoever retries
        assert await store.result_published()
        await store.save_summary(json.dumps({"winner": "p1"}))
        record = await store.load_record()
        assert record is not None and [e.seq for e in record.entries] == [1, 2, 3]

    await asyncio.gather(*(one(m) for m in MATCHES))
    entries = await rc.xrange(keys.RESULTS_STREAM)
    published = sorted(json.loads(f[b"result"])["match_id"] for _, f in entries)
    assert published == sorted(MATCHES)  # one entry per match


async def test_pool_allocation_binds_once_and_respects_capacity(rc: RedisCluster) -> None:
    servers = ["srv-a", "srv-b"]
    for s in servers:
        await rc.hset(
            keys.server_state(s),
            mapping={ServerState.CAPACITY: 4, ServerState.READY: "1", ServerState.DRAINING: "0"},
        )

    def assignment(match_id: str) -> Assignment:
        return Assignment(match_id, "duel", "blitz", 0, ("p1", "p2"), "BTCUSDT", 1)

    # Two allocators race for every match, each preferring another server.
    outcomes = await asyncio.gather(
        *(
            allocation.allocate(rc, servers[(i + k) % 2], assignment(f"m-{i}"))
            for i in range(4)
            for k in range(2)
        )
    )
    # One allocator of each match wins the binding; the other finds it bound elsewhere.
    assert outcomes.count(allocation.ASSIGNED) == 4
    assert outcomes.count(allocation.BOUND_ELSEWHERE) == 4
    hosted = {s: set(await allocation.hosted(rc, s)) for s in servers}
    assert hosted["srv-a"].isdisjoint(hosted["srv-b"])
    assert hosted["srv-a"] | hosted["srv-b"] == {f"m-{i}" for i in range(4)}
    for i in range(4):
        bound = await allocation.bound_server(rc, f"m-{i}")
        assert bound is not None and f"m-{i}" in hosted[bound]
    # srv-a takes matches up to its capacity; the next one is refused and left unbound.
    extra = [f"m-{i}" for i in range(4, 4 + 4 - len(hosted["srv-a"]))]
    for match_id in extra:
        assert await allocation.allocate(rc, "srv-a", assignment(match_id)) == allocation.ASSIGNED
    hosted["srv-a"] |= set(extra)
    assert await allocation.allocate(rc, "srv-a", assignment("m-9")) == allocation.FULL
    assert await allocation.bound_server(rc, "m-9") is None
    inbox = await rc.xrange(keys.server_inbox("srv-a"))
    assert {f[INBOX_FIELD.encode()].decode() for _, f in inbox} == hosted["srv-a"]
    await allocation.request_cancel(rc, "srv-a", next(iter(hosted["srv-a"])), "test")
    assert await rc.xlen(keys.server_inbox("srv-a")) == len(hosted["srv-a"]) + 1


async def test_rate_limiter_counts_in_fixed_windows(rc: RedisCluster) -> None:
    limiter = Limiter(rc)
    decisions = [await limiter.check("login", f"user-{i % 3}", 2, 60) for i in range(9)]
    assert [d.allowed for d in decisions] == [True] * 6 + [False] * 3
    assert all(0 < d.retry_after_s <= 60 for d in decisions[6:])
    counts = await limiter.peek(*(f"ta:lobby:rate:login:user-{i}" for i in range(3)))
    assert [c for c, _ in counts] == [3, 3, 3]


async def test_a_match_keeps_writing_across_its_primarys_failover(
    rc: RedisCluster, redis_cluster: LocalRedisCluster
) -> None:
    """The log append (a command) and the status change (a transaction over the status
    hash and the phase stream) wait out the promotion of the match's replica."""
    store = MatchStore(rc, "m-failover")
    await store.append([LogEntry(1, 1, "join", "p1")], 0)
    await store.set_status(ServerPhase.READY)
    replicate(redis_cluster, keys.match_log("m-failover"))
    primary = redis_cluster.primary_for(keys.match_log("m-failover"))
    redis_cluster.kill(primary)  # the writes below meet the dead primary first
    await store.append([LogEntry(2, 2, "join", "p2")], 1)
    await store.set_status(ServerPhase.LIVE)
    # The writes above went to the promoted replica (a node other than the killed one may
    # still gossip the old owner for a moment: ask until the cluster agrees).
    promoted = redis_cluster.wait_failover(keys.match_log("m-failover"), primary)
    assert promoted.address != primary.address
    assert [e.seq for e in await store.load_log()] == [1, 2]
    phases = await rc.xrange(keys.match_phases("m-failover"))
    assert [f[b"phase"] for _, f in phases] == [b"Ready", b"Live"]
    assert (await rc.hget(keys.match_status("m-failover"), "phase")) == b"Live"


async def test_the_lobby_platform_watch_reads_a_cluster(rc: RedisCluster) -> None:
    """Memory from every primary (the fullest one), feed and results facts by key."""
    metrics = WatchMetrics()

    async def pg_ok() -> object:
        return 1

    now_ms = int(time.time() * 1000)
    await rc.xadd(keys.feed_stream("BTCUSDT"), {"p": "1"}, id=f"{now_ms - 3000}-0")
    await rc.xadd(keys.RESULTS_STREAM, {"r": "1"})
    await PlatformWatch(rc, pg_ok, ("BTCUSDT",), metrics).check_once()
    reg = metrics.registry
    assert (reg.get_sample_value("tradearena_redis_used_memory_bytes") or 0) > 0
    assert reg.get_sample_value("tradearena_dependency_up", {"dependency": "redis"}) == 1
    assert reg.get_sample_value("tradearena_results_stream_lag") == 1
    last = reg.get_sample_value(
        "tradearena_feed_last_tick_timestamp_seconds", {"symbol": "BTCUSDT"}
    )
    assert last == (now_ms - 3000) / 1000
