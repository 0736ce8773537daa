"""The real lobby app on a Redis Cluster (`redis+cluster://` URL, Socket.IO over the
cluster): accounts with their login throttling, the queue endpoints, and a live
notification from the results worker's emitter to a connected player."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio.cluster import RedisCluster

from lobby.app import create_app
from lobby.results.worker.main import socketio_publisher
from lobby.results.worker.store import StoredNotification
from lobby.state import REDIS, SETTINGS
from tradearena import redisconn
from tradearena.contracts import keys
from tradearena.testing import lobby as lobby_support
from tradearena.testing.lobby import Client, bearer, register

from .conftest import until


@pytest.fixture
async def lobby(cluster_url: str, lobby_dsn: str, signing_key_pem: str) -> AsyncIterator[Client]:
    settings = lobby_support.test_settings(
        lobby_dsn, cluster_url, signing_key_pem, socketio_redis=True
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        assert redisconn.is_cluster(client.app[REDIS])
        yield client


async def test_accounts_queue_and_live_notifications(lobby: Client, rc: RedisCluster) -> None:
    alice = await register(lobby, "alice")
    for _ in range(2):
        bad = await lobby.post(
            "/api/v1/auth/login", json={"username": "alice", "password": "wrong-password"}
        )
        assert bad.status == 401
    resp = await lobby.post(
        "/api/v1/queue", json={"mode": "duel", "format": "blitz"}, headers=bearer(alice)
    )
    assert resp.status == 201
    status = await (await lobby.get("/api/v1/queue", headers=bearer(alice))).json()
    assert [t["mode"] for t in status["tickets"]] == ["duel"]
    assert await rc.hlen(keys.queue_tickets("duel")) == 1

    inbox: asyncio.Queue[Any] = asyncio.Queue()
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("notification", inbox.put, namespace="/lobby")
    await sio.connect(
        str(lobby.make_url("/")),
        namespaces=["/lobby"],
        auth={"token": alice["access_token"]},
        transports=["websocket"],
    )
    try:

        async def listening() -> bool:
            counts = await rc.pubsub_numsub(
                keys.SOCKETIO_CHANNEL, target_nodes=RedisCluster.ALL_NODES
            )
            return sum(n for _, n in counts) >= 1

        await until(listening)
        publish = socketio_publisher(lobby.app[SETTINGS].redis_url)
        note = StoredNotification(alice["user"]["id"], "match_result", {"match_id": "m-1"})
        await publish([note])
        got = await asyncio.wait_for(inbox.get(), 5)
        assert got["kind"] == "match_result"
        gone = await lobby.delete("/api/v1/queue?mode=duel", headers=bearer(alice))
        assert (await gone.json()) == {"removed": 1}
    finally:
        await sio.disconnect()
