"""python-socketio over a Redis Cluster: two lobby replicas' managers and the results
worker's write-only one exchange emits through classic pub/sub on the cluster."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import socketio
from aiohttp import web
from redis.asyncio.cluster import RedisCluster

from tradearena.socketio_redis import ClusterRedisManager, redis_manager

from .conftest import until

CHANNEL = "ta:test:socketio"
NAMESPACE = "/lobby"


@contextlib.asynccontextmanager
async def replica(url: str) -> AsyncIterator[tuple[socketio.AsyncServer, int]]:
    """One lobby-like Socket.IO server on the cluster manager; its clients join `user:u1`."""
    manager = redis_manager(url, CHANNEL)
    assert isinstance(manager, ClusterRedisManager)
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)

    async def connect(sid: str, environ: Any, auth: Any = None) -> None:
        await sio.enter_room(sid, "user:u1", namespace=NAMESPACE)

    sio.on("connect", connect, namespace=NAMESPACE)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield sio, port
    finally:
        await sio.shutdown()
        listener = getattr(manager, "thread", None)  # started by the first client
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        await runner.cleanup()
        if manager.redis is not None:
            await manager.redis.aclose()


async def test_two_replicas_and_a_write_only_emitter_share_rooms(
    cluster_url: str, rc: RedisCluster
) -> None:
    got: asyncio.Queue[Any] = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False)
    client.on("notification", got.put, namespace=NAMESPACE)
    async with replica(cluster_url) as (sio_a, _), replica(cluster_url) as (_, port_b):
        await client.connect(f"http://127.0.0.1:{port_b}", namespaces=[NAMESPACE])
        try:

            async def subscribed() -> bool:  # B listens once it serves a client
                counts = await rc.pubsub_numsub(CHANNEL, target_nodes=RedisCluster.ALL_NODES)
                return sum(n for _, n in counts) >= 1

            await until(subscribed)
            # Replica A emits to a room whose client is connected to replica B.
            await sio_a.emit("notification", {"from": "a"}, room="user:u1", namespace=NAMESPACE)
            assert await asyncio.wait_for(got.get(), 5) == {"from": "a"}
            # The results worker's way: a write-only manager, no server of its own.
            emitter = redis_manager(cluster_url, CHANNEL, write_only=True)
            await emitter.emit("notification", {"from": "w"}, room="user:u1", namespace=NAMESPACE)
            assert await asyncio.wait_for(got.get(), 5) == {"from": "w"}
            assert got.empty()  # each emit delivered once
            await emitter.redis.aclose()
        finally:
            await client.disconnect()
