"""Formation with the local-process runtime: real `tradearena matchserver` processes.
The players' match tokens from formation open the match server's `/match` namespace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio

from lobby.matchmaking.formation import Formation
from lobby.matchmaking.queues import Queues
from lobby.settings import FormationSettings, QueueSettings
from tradearena.contracts.phases import MatchPhase
from tradearena.launcher.localruntime import LocalProcessOrchestrator
from tradearena.modes import default_catalogue
from tradearena.testing.local_runtime import local_runtime
from tradearena.tokens import Signer, generate_private_key_pem

SIGNER = Signer.from_pem(generate_private_key_pem())


@pytest.fixture
async def runtime(tmp_path: Path, redis_url: str) -> AsyncIterator[LocalProcessOrchestrator]:
    async with local_runtime(tmp_path, redis_url, SIGNER, max_retries=0) as orchestrator:
        yield orchestrator


async def test_formed_match_accepts_the_players_with_their_tokens(
    runtime: LocalProcessOrchestrator, redis_url: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    queues = Queues(client, default_catalogue(), QueueSettings())
    sent: list[tuple[str, str, dict[str, Any]]] = []

    async def notify(user_id: str, kind: str, payload: dict[str, Any]) -> None:
        sent.append((user_id, kind, payload))

    formation = Formation(
        runtime, queues, SIGNER, notify, default_catalogue(), FormationSettings(ready_timeout_s=45)
    )
    await queues.join("ivy", "duel", "blitz", 25.0)
    await queues.join("jon", "duel", "blitz", 25.0)
    [claim] = await queues.match_round()
    outcome = await formation.form(claim)
    assert outcome.state == "ready", outcome.reason
    ready = {u: p for u, k, p in sent if k == "match_ready"}
    assert set(ready) == {"ivy", "jon"}
    sockets = []
    try:
        for player in ("ivy", "jon"):
            sio = socketio.AsyncClient(reconnection=False)
            await sio.connect(
                ready[player]["url"],
                namespaces=["/match"],
                transports=["websocket"],
                auth={"token": ready[player]["token"]},
            )
            sockets.append(sio)
            assert sio.connected
        # a connection without a valid match token is refused
        intruder = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await intruder.connect(
                ready["jon"]["url"],
                namespaces=["/match"],
                transports=["websocket"],
                auth={"token": SIGNER.match_token("m-other", "jon", 60)},
            )
    finally:
        for sio in sockets:
            await sio.disconnect()
    await runtime.cancel(claim.match_id, "test over")
    async with asyncio.timeout(30):
        phases = [s.phase async for s in runtime.watch(claim.match_id)]
    assert phases[-1] is MatchPhase.CANCELLED
    await client.aclose()
