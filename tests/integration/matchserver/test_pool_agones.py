"""A pool server under Agones (the stand-in sidecar speaks the SDK's REST gateway):
Ready once it accepts matches, Health on an interval, its Counter `matches` and List
`players` following what it hosts, Shutdown after SIGTERM has settled its matches."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tradearena.contracts.agones import MATCHES_COUNTER, PLAYERS_LIST, player_entry
from tradearena.testing.agones import AgonesSidecar
from tradearena.testing.match_client import MatchClient
from tradearena.testing.matchserver import pool_server
from tradearena.testing.pool import assign, wait_accepting, wait_ready

SERVER = "pool-agones"
CAPACITY = 3


@pytest.fixture
async def sidecar() -> AsyncIterator[AgonesSidecar]:
    async with AgonesSidecar(
        SERVER, counters={MATCHES_COUNTER: (0, 0)}, lists={PLAYERS_LIST: 100}
    ) as fake:
        yield fake


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def counted(sidecar: AgonesSidecar) -> tuple[int, int]:
    c = sidecar.counters[MATCHES_COUNTER]
    return c.count, c.capacity


async def test_a_pool_server_reports_its_matches_and_players_to_agones(
    tmp_path: Path, redis_url: str, redis: Redis, sidecar: AgonesSidecar
) -> None:
    server = pool_server(
        tmp_path,
        redis_url,
        SERVER,
        capacity=CAPACITY,
        env_extra={
            "AGONES_SDK_HTTP_PORT": str(sidecar.port),
            "TRADEARENA_AGONES_HEALTH_INTERVAL_MS": "200",
        },
    )
    server.start()
    try:
        await wait_accepting(redis, SERVER)
        await sidecar.until(lambda: sidecar.state == "Ready")
        await sidecar.until(lambda: sidecar.health_pings > 0)
        assert sidecar.paths()[0] == "/ready"
        await sidecar.until(lambda: counted(sidecar) == (0, CAPACITY))

        now = time.time_ns() // 1_000_000
        await assign(redis, SERVER, "m-a", ("alice", "bob"), mode="duel", now_ms=now)
        await wait_ready(redis, "m-a")
        await sidecar.until(lambda: counted(sidecar) == (1, CAPACITY))

        alice = MatchClient(server.seat("m-a"), "alice")
        await alice.connect()
        entry = player_entry("m-a", "alice")
        await sidecar.until(lambda: sidecar.lists[PLAYERS_LIST].values == [entry])
        await alice.close()
        await sidecar.until(lambda: sidecar.lists[PLAYERS_LIST].values == [])

        server.signal(signal.SIGTERM)
        await sidecar.until(lambda: sidecar.state == "Shutdown", within=30)
        assert await asyncio.to_thread(server.wait) == 0
        assert counted(sidecar) == (0, CAPACITY)  # the settled match left before Shutdown
        assert sidecar.paths()[-1] == "/shutdown"
    finally:
        server.stop()
