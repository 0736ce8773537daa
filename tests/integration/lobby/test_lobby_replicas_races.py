"""Two lobby replicas share Socket.IO rooms through Redis; concurrent refreshes with one
token: exactly one wins and the copy is treated as theft."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
from aiohttp.test_utils import TestClient, TestServer

from lobby.accounts.notifications import notify
from lobby.app import create_app
from lobby.settings import LobbySettings
from tradearena.testing.lobby import Client, register


async def test_notify_on_one_replica_reaches_a_socket_on_another(
    lobby_settings: LobbySettings,
) -> None:
    settings = lobby_settings.model_copy(update={"socketio_redis": True})
    async with (
        TestClient(TestServer(create_app(settings))) as a,
        TestClient(TestServer(create_app(settings))) as b,
    ):
        tokens = await register(a, "replica_user")
        got: asyncio.Queue[Any] = asyncio.Queue()

        async def on_note(data: Any) -> None:
            await got.put(data)

        sio = socketio.AsyncClient(reconnection=False)
        sio.on("notification", on_note, namespace="/lobby")
        await sio.connect(
            str(a.make_url("/")),
            namespaces=["/lobby"],
            auth={"token": tokens["access_token"]},
            transports=["websocket"],
        )
        try:
            app_b = b.server.app
            assert app_b is not None
            # The Redis manager subscribes in the background: retry until delivered
            # (each try stores a notification; only delivery ends the loop).
            data = None
            for _ in range(50):
                await notify(app_b, tokens["user"]["id"], "hello", {"from": "b"})
                try:
                    data = await asyncio.wait_for(got.get(), 0.2)
                    break
                except TimeoutError:
                    continue
            assert data is not None and data["kind"] == "hello" and data["payload"] == {"from": "b"}
        finally:
            await sio.disconnect()


async def test_concurrent_refreshes_get_the_same_successor_and_keep_the_family(
    lobby_client: Client,
) -> None:
    """A refresh race (two tabs, a retry) is not token theft: inside the grace both get
    the same successor, which stays valid (docs/lobby.md, refresh tokens)."""
    tokens = await register(lobby_client, "racer")

    async def refresh() -> tuple[int, dict[str, Any]]:
        resp = await lobby_client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        return resp.status, await resp.json(content_type=None)

    (status_a, body_a), (status_b, body_b) = await asyncio.gather(refresh(), refresh())
    assert (status_a, status_b) == (200, 200)
    assert body_a["refresh_token"] == body_b["refresh_token"] != tokens["refresh_token"]
    resp = await lobby_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": body_a["refresh_token"]}
    )
    assert resp.status == 200
