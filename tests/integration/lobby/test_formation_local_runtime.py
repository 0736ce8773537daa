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
from tradearena.contracts.serverconfig import TlsFiles
from tradearena.launcher.dial import DialOptions
from tradearena.launcher.localruntime import LocalProcessOrchestrator
from tradearena.modes import default_catalogue
from tradearena.testing.local_runtime import local_runtime
from tradearena.testing.tls import ThrowawayCA
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


async def test_a_tls_runtime_advertises_https_and_players_connect_as_given(
    tmp_path: Path, redis_url: str
) -> None:
    """The runtime reports https, formation hands the url on unchanged, and a player
    that trusts the CA and maps the name plays over wss."""
    ca = ThrowawayCA.create(tmp_path / "ca")
    leaf = ca.issue(["*.play.test"])
    tls = TlsFiles(str(leaf.cert_file), str(leaf.key_file))
    host = "127-0-0-1.play.test"
    client = aioredis.Redis.from_url(redis_url)
    sent: list[tuple[str, str, dict[str, Any]]] = []

    async def notify(user_id: str, kind: str, payload: dict[str, Any]) -> None:
        sent.append((user_id, kind, payload))

    async with local_runtime(
        tmp_path, redis_url, SIGNER, max_retries=0, tls=tls, advertise_host=host
    ) as runtime:
        queues = Queues(client, default_catalogue(), QueueSettings())
        formation = Formation(
            runtime,
            queues,
            SIGNER,
            notify,
            default_catalogue(),
            FormationSettings(ready_timeout_s=45),
        )
        await queues.join("ivy", "duel", "blitz", 25.0)
        await queues.join("jon", "duel", "blitz", 25.0)
        [claim] = await queues.match_round()
        outcome = await formation.form(claim)
        assert outcome.state == "ready", outcome.reason
        ready = {u: p for u, k, p in sent if k == "match_ready"}
        status = await runtime.status(claim.match_id)
        assert status is not None and status.scheme == "https"
        assert ready["ivy"]["url"] == status.url == f"https://{host}:{status.port}"
        dial = DialOptions(ca_file=ca.cert_file, hosts={"*.play.test": "127.0.0.1"})
        sio = socketio.AsyncClient(reconnection=False, http_session=dial.session)
        try:
            await sio.connect(
                ready["ivy"]["url"],
                namespaces=["/match"],
                transports=["websocket"],
                auth={"token": ready["ivy"]["token"]},
            )
            reply = await sio.call("sync", {}, namespace="/match", timeout=10)
            assert reply["state"]["player"] == "ivy"
        finally:
            await sio.disconnect()
        await runtime.cancel(claim.match_id, "test over")
    await client.aclose()
