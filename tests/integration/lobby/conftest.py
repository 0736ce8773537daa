"""Fixtures of the lobby tests: a lobby app with an orchestrator whose match servers
are stand-in processes (tradearena.testing.proc_orchestrator), and a Redis client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from lobby.app import create_app
from lobby.settings import LobbySettings
from tradearena.testing.lobby import Client
from tradearena.testing.proc_orchestrator import ProcessOrchestrator


@pytest.fixture
async def orchestrator() -> AsyncIterator[ProcessOrchestrator]:
    orch = ProcessOrchestrator()
    yield orch
    await orch.close()


@pytest.fixture
async def client(
    lobby_settings: LobbySettings, orchestrator: ProcessOrchestrator
) -> AsyncIterator[Client]:
    app = create_app(lobby_settings, orchestrator=orchestrator)
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def rds(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()
