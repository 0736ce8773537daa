"""The local pool runtime with real pool-server processes and real Redis: matches start
on warm dense servers, the buffer is kept, crashes restart in place, close settles."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import socketio
from redis.asyncio import Redis

from tradearena.contracts import keys
from tradearena.contracts.orchestration import MatchSpec, MatchStatus
from tradearena.contracts.phases import MatchPhase
from tradearena.launcher.localpool import LocalPoolOrchestrator
from tradearena.orchestration.buffer import BufferPolicy
from tradearena.testing.local_runtime import local_pool, phases_until
from tradearena.testing.waiting import eventually
from tradearena.tokens import Signer, generate_private_key_pem

SIGNER = Signer.from_pem(generate_private_key_pem())


def spec(match_id: str, duration_ms: int = 600_000) -> MatchSpec:
    return MatchSpec(match_id, "standard", "blitz", duration_ms, ("alice",))


async def connect(status: MatchStatus, match_id: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    assert status.url is not None
    await client.connect(
        status.url,
        namespaces=["/match"],
        transports=["websocket"],
        auth={"token": SIGNER.match_token(match_id, "alice", 600)},
    )
    return client


def holds(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """A synchronous condition for `eventually`."""

    async def poll() -> bool:
        return check()

    return poll


def ready_servers(pool: LocalPoolOrchestrator) -> list[str]:
    return [s.server_id for s in pool.servers.values() if s.ready]


@pytest.fixture
async def pool(tmp_path: Path, redis_url: str) -> AsyncIterator[LocalPoolOrchestrator]:
    policy = BufferPolicy(capacity=4, buffer=1, min_servers=1, max_servers=3)
    async with local_pool(tmp_path, redis_url, SIGNER, policy) as orchestrator:
        yield orchestrator


async def test_matches_start_at_once_and_share_one_warm_server(
    pool: LocalPoolOrchestrator,
) -> None:
    assert ready_servers(pool) == ["local-1"]  # opened: the pool's first server is warm
    started = time.monotonic()
    for n in range(3):
        await pool.start(spec(f"m-share-{n}"))
    await pool.start(spec("m-share-0"))  # idempotent: still one allocation
    readies = [(await phases_until(pool, f"m-share-{n}", MatchPhase.READY)) for n in range(3)]
    elapsed = time.monotonic() - started
    for seen in readies:
        assert [s.phase for s in seen] == [
            MatchPhase.PENDING,
            MatchPhase.CREATING,
            MatchPhase.READY,
        ]
    ports = {seen[-1].port for seen in readies}
    assert len(ports) == 1 and ports == {pool.servers["local-1"].port}
    assert {seen[-1].detail["server"] for seen in readies} == {"local-1"}
    # A warm server acknowledges within a second (a cold process takes several).
    assert elapsed < 1.5, f"3 matches Ready after {elapsed:.2f} s"
    print(f"3 matches Ready on one warm server in {elapsed * 1000:.0f} ms")
    assert pool.metrics.allocations.labels("warm")._value.get() == 3
    # The matches share one process, and each is played there.
    clients = [await connect(seen[-1], f"m-share-{n}") for n, seen in enumerate(readies)]
    try:
        for n in range(3):
            await phases_until(pool, f"m-share-{n}", MatchPhase.LIVE)
        assert len([s for s in pool.servers.values() if s.proc is not None]) == 1
    finally:
        for client in clients:
            await client.disconnect()


async def test_a_server_is_added_when_free_slots_drop_below_the_buffer(
    pool: LocalPoolOrchestrator,
) -> None:
    for n in range(3):
        await pool.start(spec(f"m-buf-{n}"))
        await phases_until(pool, f"m-buf-{n}", MatchPhase.READY)
    # 3 of 4 slots used leaves 1 free, the buffer: still one server.
    assert [s.server_id for s in pool.servers.values()] == ["local-1"]
    await pool.start(spec("m-buf-3"))  # the last free slot: below the buffer
    await phases_until(pool, "m-buf-3", MatchPhase.READY)
    await eventually(holds(lambda: ready_servers(pool) == ["local-1", "local-2"]))
    assert pool.metrics.servers_started.labels("buffer")._value.get() == 1
    # The next match goes to the warm second server at once.
    await pool.start(spec("m-buf-4"))
    ready = (await phases_until(pool, "m-buf-4", MatchPhase.READY))[-1]
    assert (ready.detail["server"], ready.port) == ("local-2", pool.servers["local-2"].port)
    assert pool.metrics.allocations.labels("cold")._value.get() == 0


async def test_no_free_slot_starts_a_server_and_the_match_waits_for_it(
    tmp_path: Path, redis_url: str
) -> None:
    policy = BufferPolicy(capacity=1, buffer=0, min_servers=1, max_servers=2)
    async with local_pool(tmp_path, redis_url, SIGNER, policy) as pool:
        await pool.start(spec("m-cold-1"))
        first = (await phases_until(pool, "m-cold-1", MatchPhase.READY))[-1]
        await pool.start(spec("m-cold-2"))  # local-1 is full: a cold start
        second = (await phases_until(pool, "m-cold-2", MatchPhase.READY))[-1]
        assert (first.detail["server"], second.detail["server"]) == ("local-1", "local-2")
        assert first.port != second.port
        assert pool.metrics.servers_started.labels("no_room")._value.get() == 1
        assert pool.metrics.allocations.labels("cold")._value.get() == 1
        # max_servers reached and both full: a third match waits, no third server starts;
        # cancelled while it waits, it settles at once.
        await pool.start(spec("m-cold-3"))
        waiting = await phases_until(pool, "m-cold-3", MatchPhase.PENDING)
        assert waiting[-1].address is None
        await pool.cancel("m-cold-3", "admin: test")
        await phases_until(pool, "m-cold-3", MatchPhase.CANCELLED)
        assert len(pool.servers) == 2


async def test_a_burst_beyond_the_free_slots_starts_servers_together(
    tmp_path: Path, redis_url: str
) -> None:
    policy = BufferPolicy(capacity=2, buffer=0, min_servers=1, max_servers=4)
    async with local_pool(tmp_path, redis_url, SIGNER, policy) as pool:
        names = [f"m-burst-{n}" for n in range(6)]
        for name in names:  # 6 matches, 2 free slots: 2 more servers, started at once
            await pool.start(spec(name))
        readies = [(await phases_until(pool, name, MatchPhase.READY))[-1] for name in names]
        assert {r.detail["server"] for r in readies} == {"local-1", "local-2", "local-3"}
        # Started for the waiting matches (by them, or by the buffer counting them).
        started = pool.metrics.servers_started
        assert started.labels("no_room")._value.get() >= 1
        assert started.labels("no_room")._value.get() + started.labels("buffer")._value.get() == 2
        assert pool.metrics.allocations.labels("cold")._value.get() == 4


async def test_a_surplus_server_that_idles_is_stopped(tmp_path: Path, redis_url: str) -> None:
    policy = BufferPolicy(capacity=1, buffer=0, min_servers=1, max_servers=2, idle_stop_s=0.5)
    async with local_pool(tmp_path, redis_url, SIGNER, policy) as pool:
        for name in ("m-stay", "m-go"):
            await pool.start(spec(name))
        await phases_until(pool, "m-stay", MatchPhase.READY)
        gone = (await phases_until(pool, "m-go", MatchPhase.READY))[-1].detail["server"]
        assert len(pool.servers) == 2
        await pool.cancel("m-go", "admin: test")
        await phases_until(pool, "m-go", MatchPhase.CANCELLED)
        # Its server hosts nothing, the other holds every match: stopped after idling.
        await eventually(holds(lambda: pool.servers[gone].gone))
        # Prometheus' targets (`up`) follow: only the server that stays.
        stays = next(s for s in pool.servers.values() if not s.gone)
        assert pool.metrics_addresses() == [f"127.0.0.1:{stays.admin_port}"]
        proc = pool.servers[gone].proc
        assert proc is not None and proc.returncode == 0
        status = await pool.status("m-stay")
        assert status is not None and status.phase is MatchPhase.READY


async def test_cancelling_one_match_leaves_its_neighbours_alone(
    pool: LocalPoolOrchestrator, redis_url: str
) -> None:
    for name in ("m-keep", "m-drop"):
        await pool.start(spec(name))
    keep = (await phases_until(pool, "m-keep", MatchPhase.READY))[-1]
    drop = (await phases_until(pool, "m-drop", MatchPhase.READY))[-1]
    clients = [await connect(keep, "m-keep"), await connect(drop, "m-drop")]
    try:
        await phases_until(pool, "m-drop", MatchPhase.LIVE)
        await pool.cancel("m-drop", "admin: test")
        seen = await phases_until(pool, "m-drop", MatchPhase.CANCELLED)
        assert MatchPhase.CANCELLING in [s.phase for s in seen]
        redis = Redis.from_url(redis_url)
        try:
            assert await redis.exists(keys.result_published("m-drop"))
            hosted: list[bytes | str] = []
            deadline = time.monotonic() + 10  # the server lets go once the result is out
            while (hosted := await redis.hkeys(keys.server_matches("local-1"))) != [b"m-keep"]:
                assert time.monotonic() < deadline, hosted
                await asyncio.sleep(0.05)
        finally:
            await redis.aclose()
        status = await pool.status("m-keep")
        assert status is not None and status.phase in (MatchPhase.READY, MatchPhase.LIVE)
        assert [s.match_id for s in await pool.list_active()] == ["m-keep"]
    finally:
        for client in clients:
            await client.disconnect()


async def test_a_killed_server_restarts_in_place_and_its_matches_carry_on(
    pool: LocalPoolOrchestrator,
) -> None:
    await pool.start(spec("m-crash-a"))
    await pool.start(spec("m-crash-b"))
    ready = (await phases_until(pool, "m-crash-a", MatchPhase.READY))[-1]
    await phases_until(pool, "m-crash-b", MatchPhase.READY)
    client = await connect(ready, "m-crash-a")
    await phases_until(pool, "m-crash-a", MatchPhase.LIVE)
    await client.disconnect()
    server = pool.servers["local-1"]
    assert server.proc is not None
    first_pid = server.proc.pid
    os.kill(first_pid, signal.SIGKILL)
    status = None
    async with asyncio.timeout(30):
        async for status in pool.watch("m-crash-a"):
            if status.restarts == 1:
                break
    assert status is not None
    assert (status.phase, status.port, status.restarts) == (MatchPhase.LIVE, ready.port, 1)
    restarted_b = await pool.status("m-crash-b")
    assert restarted_b is not None and restarted_b.restarts == 1
    await eventually(holds(lambda: server.ready))
    assert server.proc is not None and server.proc.pid != first_pid
    assert pool.metrics.server_restarts._value.get() == 1
    # The same address serves both matches again, restored from Redis.
    async with aiohttp.ClientSession() as http, http.get(status.detail["admin"] + "/readyz") as r:
        assert r.status == 200
    for name in ("m-crash-a", "m-crash-b"):
        again = await connect(status, name)
        await again.disconnect()
    await phases_until(pool, "m-crash-b", MatchPhase.LIVE)


async def test_a_server_that_keeps_failing_fails_its_matches(
    tmp_path: Path, redis_url: str
) -> None:
    policy = BufferPolicy(capacity=4, buffer=0, min_servers=1, max_servers=1)
    async with local_pool(tmp_path, redis_url, SIGNER, policy, max_restarts=2) as pool:
        await pool.start(spec("m-doomed"))
        await phases_until(pool, "m-doomed", MatchPhase.READY)
        server = pool.servers["local-1"]
        for _ in range(2):
            await eventually(holds(lambda: server.ready))
            assert server.proc is not None
            os.kill(server.proc.pid, signal.SIGKILL)
            await eventually(holds(lambda: not server.ready))
        seen = await phases_until(pool, "m-doomed", MatchPhase.FAILED)
        assert seen[-1].reason is not None and "exited with status" in seen[-1].reason
        assert pool.metrics.servers_given_up._value.get() == 1


async def test_close_settles_every_match_and_stops_every_server(
    tmp_path: Path, redis_url: str
) -> None:
    policy = BufferPolicy(capacity=2, buffer=1, min_servers=1, max_servers=3)
    async with local_pool(tmp_path, redis_url, SIGNER, policy) as pool:
        names = [f"m-close-{n}" for n in range(3)]
        for name in names:
            await pool.start(spec(name))
        readies = [(await phases_until(pool, name, MatchPhase.READY))[-1] for name in names]
        assert len({r.port for r in readies}) == 2  # two servers share three matches
        clients = [await connect(r, name) for r, name in zip(readies, names, strict=True)]
        procs = [s.proc for s in pool.servers.values() if s.proc is not None]
    for client in clients:
        await client.disconnect()
    assert procs and all(p.returncode is not None for p in procs)
    redis = Redis.from_url(redis_url)
    try:
        for name in names:
            assert await redis.exists(keys.result_published(name)), name
            status = await pool.status(name)
            assert status is not None and status.phase.terminal, status
    finally:
        await redis.aclose()
