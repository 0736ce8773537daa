"""The match server waiting for a replica (TRADEARENA_REDIS_WAIT_REPLICAS=1) as a real
process on a real primary with a replica: an action is acknowledged only once the
replica has it; a replica that stays silent faults the match (`redis_not_durable`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import redis

from tradearena.contracts import keys
from tradearena.contracts.pool import ServerState
from tradearena.testing.match_client import MatchClient
from tradearena.testing.matchserver import MatchServerProcess, pool_server
from tradearena.testing.redis_replica import ReplicatedRedis
from tradearena.testing.waiting import eventually

PLAYERS = ("alice", "bob")
MID = "m-durable"


def durable_server(workdir: Path, url: str, timeout_ms: int) -> MatchServerProcess:
    return MatchServerProcess(
        workdir,
        url,
        MID,
        PLAYERS,
        env_extra={
            "TRADEARENA_DURATION_MS": "600000",
            "TRADEARENA_REDIS_WAIT_REPLICAS": "1",
            "TRADEARENA_REDIS_WAIT_TIMEOUT_MS": str(timeout_ms),
        },
    )


@pytest.fixture
def replica_frozen_guard(redis_replicated: ReplicatedRedis) -> Iterator[ReplicatedRedis]:
    yield redis_replicated
    redis_replicated.replica.thaw()  # whatever the test did


@contextlib.asynccontextmanager
async def live(server: MatchServerProcess) -> AsyncIterator[tuple[MatchClient, MatchClient]]:
    alice, bob = MatchClient(server, "alice"), MatchClient(server, "bob")
    try:
        await alice.connect()
        await bob.connect()
        await alice.wait_for("phase", lambda d: d["phase"] == "live")
        await alice.wait_for("tick")
        yield alice, bob
    finally:
        await alice.close()
        await bob.close()


async def admin_metrics(server: MatchServerProcess) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{server.admin_url}/metrics") as resp:
        return await resp.text()


def logged_orders(client: redis.Redis) -> list[str]:
    rows = client.lrange(keys.match_log(MID), 0, -1)
    return [
        entry["data"]["client_order_id"]
        for entry in map(json.loads, rows)
        if entry["kind"] == "action"
    ]


async def test_an_action_is_acked_only_once_the_replica_has_it(
    tmp_path: Path, replicated_url: str, replica_frozen_guard: ReplicatedRedis
) -> None:
    pair = replica_frozen_guard
    server = durable_server(tmp_path, replicated_url, timeout_ms=20_000)
    server.start()
    replica = pair.replica.client()
    try:
        async with live(server) as (alice, _):
            first = await alice.act(type="set_stops", client_order_id="d-1")
            assert first["code"] == "no_position"
            assert "d-1" in logged_orders(replica)  # on the replica when the ack came
            pair.replica.freeze()
            pending = asyncio.create_task(alice.act(type="set_stops", client_order_id="d-2"))
            await asyncio.sleep(1.0)  # the observation window: no ack meanwhile
            assert not pending.done()
            pair.replica.thaw()
            ack = await asyncio.wait_for(pending, 10)
            assert ack["code"] == "no_position"
            assert "d-2" in logged_orders(replica)
            metrics = await admin_metrics(server)
            assert "tradearena_match_replica_wait_seconds_count" in metrics
            count = next(
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("tradearena_match_replica_wait_seconds_count")
            )
            assert count > 2
    finally:
        replica.close()
        server.stop()


async def test_a_silent_replica_faults_the_match_after_the_timeout(
    tmp_path: Path, replicated_url: str, replica_frozen_guard: ReplicatedRedis
) -> None:
    pair = replica_frozen_guard
    server = durable_server(tmp_path, replicated_url, timeout_ms=1500)
    server.start()
    primary = redis.Redis.from_url(replicated_url)
    try:
        async with live(server) as (alice, bob):
            pair.replica.freeze()
            ack = await alice.act(type="set_stops", client_order_id="d-1")
            assert not ack["ok"]
            end = await bob.wait_for("match_end", within=15)
            assert (end["phase"], end["reason"]) == ("cancelled", "redis_not_durable")
            metrics = await admin_metrics(server)
            assert 'tradearena_match_faults_total{fault="redis_not_durable"} 1.0' in metrics
            assert "tradearena_match_replica_wait_timeouts_total 1.0" in metrics
        assert server.wait(20) == 0
        logs = server.logs()
        assert "commit not replicated in time" in logs
        assert '"replicas_seen": 0' in logs
        rows = primary.xrange(keys.RESULTS_STREAM) or []
        assert len(rows) == 1  # the cancelled match is still published, once
        fields = rows[0][1] or {}
        assert json.loads(fields[b"result"])["reason"] == "redis_not_durable"
    finally:
        primary.close()
        server.stop()


@pytest.mark.parametrize(("url_fixture", "ready"), [("redis_url", False), ("replicated_url", True)])
async def test_a_pool_server_is_ready_only_if_its_primary_has_the_replicas(
    tmp_path: Path, url_fixture: str, ready: bool, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(url_fixture)  # a lone primary, or one with a replica
    server = pool_server(tmp_path, url, env_extra={"TRADEARENA_REDIS_WAIT_REPLICAS": "1"})
    server.start(wait_ready=False)

    async def accepting() -> bool:
        try:
            async with http.get(f"{server.admin_url}/status") as resp:
                return bool((await resp.json())["ready"])
        except aiohttp.ClientConnectionError:
            return False  # the admin port is not listening yet

    try:
        async with aiohttp.ClientSession() as http:
            await eventually(accepting)  # the server itself takes matches...
            for probe in (f"{server.admin_url}/readyz", f"{server.url}/readyz"):
                async with http.get(probe) as resp:  # ...if its commits can be durable
                    assert resp.status == (200 if ready else 503)
            # Allocators read the state hash: once written after that, it says the same.
            seen_ms = time.time() * 1000

            async def state_after() -> dict[bytes, bytes] | None:
                with redis.Redis.from_url(url) as client:
                    state = client.hgetall(keys.server_state(server.server_id))
                written = int(state.get(ServerState.HEARTBEAT_MS.encode(), 0))
                return state if written > seen_ms else None

            state = await eventually(state_after)
            assert state[ServerState.READY.encode()] == (b"1" if ready else b"0")
    finally:
        server.stop()


async def test_a_log_that_lost_entries_faults_the_match_instead_of_growing_a_gap(
    tmp_path: Path, redis_url: str
) -> None:
    server = MatchServerProcess(  # no waiting: a failover may lose acknowledged entries
        tmp_path, redis_url, MID, PLAYERS, env_extra={"TRADEARENA_DURATION_MS": "600000"}
    )
    server.start()
    client = redis.Redis.from_url(redis_url)
    try:
        async with live(server) as (alice, bob):
            assert (await alice.act(type="set_stops", client_order_id="d-1"))["ok"] is False
            client.ltrim(keys.match_log(MID), 0, -3)  # the last two entries are gone
            end = await bob.wait_for("match_end", within=15)
            assert (end["phase"], end["reason"]) == ("cancelled", "redis_log_diverged")
            metrics = await admin_metrics(server)
            assert 'tradearena_match_faults_total{fault="redis_log_diverged"} 1.0' in metrics
        assert server.wait(20) == 0
        seqs = [json.loads(r)["seq"] for r in client.lrange(keys.match_log(MID), 0, -1)]
        assert seqs == list(range(1, len(seqs) + 1))  # never appended past the gap
        rows = client.xrange(keys.RESULTS_STREAM) or []
        assert len(rows) == 1  # the cancelled match is published, from memory
        fields = rows[0][1] or {}
        assert json.loads(fields[b"result"])["reason"] == "redis_log_diverged"
    finally:
        client.close()
        server.stop()
