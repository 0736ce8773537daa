"""Socket.IO /lobby: token auth, per-user rooms, notify() stored and pushed live; REST."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio
from aiohttp import web

from lobby.accounts.notifications import notify
from lobby.http.sockets import emit_to_user
from tradearena.testing.lobby import Client, bearer, register


async def _connect(
    client: Client, token: str | None
) -> tuple[socketio.AsyncClient, asyncio.Queue[Any]]:
    sio = socketio.AsyncClient(reconnection=False)
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    async def on_notification(data: Any) -> None:
        await inbox.put(("notification", data))

    async def on_status(data: Any) -> None:
        await inbox.put(("queue_status", data))

    async def on_refused(data: Any) -> None:
        await inbox.put(("refused", data))

    sio.on("notification", on_notification, namespace="/lobby")
    sio.on("queue_status", on_status, namespace="/lobby")
    sio.on("connect_error", on_refused, namespace="/lobby")
    await sio.connect(
        str(client.make_url("/")),
        namespaces=["/lobby"],
        auth={"token": token} if token is not None else None,
        transports=["websocket"],
    )
    return sio, inbox


def _app(client: Client) -> web.Application:
    app = client.server.app
    assert app is not None
    return app


async def test_notify_reaches_every_connection_of_the_player_only(lobby_client: Client) -> None:
    vic = await register(lobby_client, "victor")
    wen = await register(lobby_client, "wendy")
    tab1, inbox1 = await _connect(lobby_client, vic["access_token"])
    tab2, inbox2 = await _connect(lobby_client, vic["access_token"])
    other, inbox3 = await _connect(lobby_client, wen["access_token"])
    try:
        metrics = await (await lobby_client.get("/metrics")).text()
        assert "lobby_socketio_connections 3.0" in metrics
        app = _app(lobby_client)
        note = await notify(app, vic["user"]["id"], "match_found", {"match_id": "m-1"})
        for inbox in (inbox1, inbox2):
            event, data = await asyncio.wait_for(inbox.get(), 5)
            assert event == "notification"
            assert data["id"] == note.id and data["kind"] == "match_found"
            assert data["payload"] == {"match_id": "m-1"} and data["read_at"] is None
        await emit_to_user(app, wen["user"]["id"], "queue_status", {"position": 3})
        assert await asyncio.wait_for(inbox3.get(), 5) == ("queue_status", {"position": 3})
        # Events are delivered in order per connection: had victor's tabs received wendy's
        # event, it would be ahead of this marker.
        await emit_to_user(app, vic["user"]["id"], "queue_status", {"marker": True})
        assert await asyncio.wait_for(inbox1.get(), 5) == ("queue_status", {"marker": True})
        assert inbox3.empty()
    finally:
        for s in (tab1, tab2, other):
            await s.disconnect()


@pytest.mark.parametrize(
    ("auth", "code"),
    [
        (None, "auth_required"),
        ({"token": "garbage"}, "token_malformed"),
        ({"t": 1}, "auth_required"),
    ],
)
async def test_refused_connections_say_why(
    lobby_client: Client, auth: dict[str, Any] | None, code: str
) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    sio.on("connect_error", got.append, namespace="/lobby")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            str(lobby_client.make_url("/")),
            namespaces=["/lobby"],
            auth=auth,
            transports=["websocket"],
        )
    assert len(got) == 1 and got[0]["data"] == {"code": code} and got[0]["message"]


async def test_offline_player_reads_and_marks_notifications(lobby_client: Client) -> None:
    xena = await register(lobby_client, "xena")
    auth = bearer(xena)
    app = _app(lobby_client)
    notes = [await notify(app, xena["user"]["id"], "result", {"rank": i}) for i in range(5)]
    resp = await lobby_client.get("/api/v1/notifications?limit=3", headers=auth)
    page = await resp.json()
    assert resp.status == 200 and page["unread"] == 5
    assert [n["id"] for n in page["items"]] == [n.id for n in notes[::-1][:3]]
    resp = await lobby_client.get(
        f"/api/v1/notifications?limit=3&before={page['next_before']}", headers=auth
    )
    rest = await resp.json()
    assert [n["payload"]["rank"] for n in rest["items"]] == [1, 0] and rest["next_before"] is None
    resp = await lobby_client.post(
        "/api/v1/notifications/read", json={"ids": [notes[0].id, notes[1].id]}, headers=auth
    )
    assert (await resp.json()) == {"updated": 2}
    resp = await lobby_client.get("/api/v1/notifications?unread_only=true", headers=auth)
    unread = await resp.json()
    assert unread["unread"] == 3 and {n["payload"]["rank"] for n in unread["items"]} == {2, 3, 4}
    # Someone else's ids are not theirs to mark.
    yuri = await register(lobby_client, "yuri")
    resp = await lobby_client.post(
        "/api/v1/notifications/read", json={"ids": [notes[2].id]}, headers=bearer(yuri)
    )
    assert (await resp.json()) == {"updated": 0}
    resp = await lobby_client.post("/api/v1/notifications/read", json={"all": True}, headers=auth)
    assert (await resp.json()) == {"updated": 3}
    resp = await lobby_client.get("/api/v1/notifications", headers=auth)
    assert (await resp.json())["unread"] == 0
