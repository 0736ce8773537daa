"""MatchStore's durable writes on a real Redis: the idempotent append, WAIT on the
writer's connection (a plain primary with a replica), the replica check. On a Redis
Cluster: tests/integration/redis_cluster/test_durable_append.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis

from matchserver.durability import (
    NotDurableError,
    ReplicaCheck,
    ReplicaWaiter,
    WaitPolicy,
)
from matchserver.engine.log import ACTION, LogEntry
from matchserver.engine.match import Match
from matchserver.metrics import MatchMetrics
from matchserver.runner import MatchRunner, RunnerConfig
from matchserver.store import LogDivergedError, MatchStore
from tradearena import redisconn
from tradearena.contracts import keys
from tradearena.modes import default_catalogue
from tradearena.testing.redis_replica import ReplicatedRedis

MID = "m-durable"


def entries(first: int, n: int) -> list[LogEntry]:
    return [
        LogEntry(seq, 1000 + seq, ACTION, "alice", {"client_order_id": f"c-{seq}"})
        for seq in range(first, first + n)
    ]


def store_for(url: str, replicas: int = 0, timeout_ms: int = 5000) -> MatchStore:
    client = redisconn.connect(url)
    return MatchStore(client, MID, ReplicaWaiter(client, WaitPolicy(replicas, timeout_ms)))


async def close(store: MatchStore) -> None:
    await store.waiter.aclose()
    await store.redis.aclose()


async def test_a_retried_append_lands_once_and_a_diverged_log_is_refused(redis_url: str) -> None:
    store = store_for(redis_url)
    try:
        assert await store.append(entries(1, 3), 0) == 3
        assert await store.append(entries(1, 3), 0) == 3  # the reply was lost: retried
        assert len(await store.load_log()) == 3
        assert await store.append(entries(4, 2), 3) == 5
        with pytest.raises(LogDivergedError) as lost:  # we think 7 are there: some were lost
            await store.append(entries(8, 1), 7)
        assert (lost.value.expected, lost.value.found) == (7, 5)
        with pytest.raises(LogDivergedError):  # same length, other entries: not ours
            await store.append(entries(10, 2), 3)
        assert [e.seq for e in await store.load_log()] == [1, 2, 3, 4, 5]
    finally:
        await close(store)


async def test_a_waited_append_is_on_the_replica_when_it_returns(
    replicated_url: str, redis_replicated: ReplicatedRedis
) -> None:
    store = store_for(replicated_url, replicas=1)
    replica = redis_replicated.replica.client()
    try:
        redis_replicated.replica.freeze()
        pending = asyncio.create_task(store.append(entries(1, 2), 0))
        await asyncio.sleep(0.8)  # the observation window: it must still be waiting
        assert not pending.done()
        redis_replicated.replica.thaw()
        assert await asyncio.wait_for(pending, 10) == 2
        rows = replica.lrange(keys.match_log(MID), 0, -1)
        assert [json.loads(r)["seq"] for r in rows] == [1, 2]
        assert await store.publish_result('{"r": 1}')
        assert not await store.publish_result('{"r": 1}')  # once; the retry waits too
        assert replica.xlen(keys.RESULTS_STREAM) == 1
    finally:
        redis_replicated.replica.thaw()
        replica.close()
        await close(store)


async def test_a_frozen_replica_times_the_write_out(
    replicated_url: str, redis_replicated: ReplicatedRedis
) -> None:
    store = store_for(replicated_url, replicas=1, timeout_ms=1200)
    try:
        redis_replicated.replica.freeze()
        with pytest.raises(NotDurableError) as slow:
            await store.append(entries(1, 1), 0)
        assert (slow.value.wanted, slow.value.seen, slow.value.landed) == (1, 0, True)
        assert 1.2 <= slow.value.waited_s < 3
    finally:
        redis_replicated.replica.thaw()
        await close(store)


async def test_replica_check_counts_online_replicas(replicated_url: str, redis_url: str) -> None:
    for url, wanted, ok in [
        (replicated_url, 1, True),
        (replicated_url, 2, False),
        (redis_url, 1, False),  # a lone primary
        (redis_url, 0, True),  # nothing wanted: never asks
    ]:
        client = redisconn.connect(url)
        try:
            check = ReplicaCheck(client, wanted)
            assert await check.ok() is ok, (url, wanted, check.replicas)
        finally:
            await client.aclose()


async def test_a_connection_lost_mid_wait_is_retried_and_the_append_lands_once(
    replicated_url: str, redis_replicated: ReplicatedRedis
) -> None:
    store = store_for(replicated_url, replicas=1, timeout_ms=10_000)
    try:
        redis_replicated.replica.freeze()
        pending = asyncio.create_task(store.append(entries(1, 3), 0))
        await asyncio.sleep(0.3)  # the append is in, its WAIT blocked
        with redis.Redis.from_url(replicated_url) as admin:
            assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
        await asyncio.sleep(0.3)  # retried: the same append again, and a WAIT
        assert not pending.done()
        redis_replicated.replica.thaw()
        assert await asyncio.wait_for(pending, 10) == 3
        assert [e.seq for e in await store.load_log()] == [1, 2, 3]  # once
    finally:
        redis_replicated.replica.thaw()
        await close(store)


class RecordingEmitter:
    """What the runner hands out, in order (the Emitter a host gives it)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def broadcast(self, kind: str, data: dict[str, Any]) -> None:
        self.sent.append((kind, data))

    async def to_player(self, player: str, kind: str, data: dict[str, Any]) -> None:
        self.sent.append((kind, data))


async def test_a_log_found_diverged_while_settling_still_tells_the_players(
    redis_url: str,
) -> None:
    store = store_for(redis_url)
    emitter = RecordingEmitter()
    match = Match(MID, "duel", default_catalogue().mode("duel").rules, ("alice", "bob"), 60_000, 0)
    config = RunnerConfig("blitz", "BTCUSDT", 60_000, 50, 1000, 20)
    try:
        runner = await MatchRunner.open(match, store, emitter, MatchMetrics(), config, lambda: 10)
        assert (await runner.connect("alice")).ok
        await store.redis.delete(keys.match_log(MID))  # lost behind the runner's back
        runner.report_fault("server_error", "a fault of its own")
        await runner.settle_now(cancelled=True, reason="server_error")
        kinds = [kind for kind, _ in emitter.sent]
        assert kinds[-1] == "match_end"  # the stop went out from memory
        assert emitter.sent[-1][1]["reason"] == "server_error"
        assert runner.finished.is_set() and await store.result_published()
        assert await store.load_log() == []  # and the log was left as found
    finally:
        await close(store)
