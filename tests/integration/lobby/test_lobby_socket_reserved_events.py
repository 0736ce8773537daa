"""Socket.IO /lobby: a client cannot fire the server's own transport events (the real
lobby app, real Redis and PostgreSQL, a real socket.io client)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import socketio

from tradearena.testing.lobby import Client, bearer, register


async def _gauge_and_refusals(client: Client) -> tuple[str, str]:
    metrics = await (await client.get("/metrics")).text()
    gauge = next(line for line in metrics.splitlines() if line.startswith("lobby_socketio_c"))
    refusals = [
        line
        for line in metrics.splitlines()
        if line.startswith("lobby_socketio_event_refusals_total")
    ]
    return gauge, ";".join(refusals)


async def test_client_events_named_connect_or_disconnect_change_nothing(
    lobby_client: Client,
) -> None:
    vic = await register(lobby_client, "victor")
    auth = bearer(vic)
    joined = await lobby_client.post(
        "/api/v1/queue", json={"mode": "duel", "format": "blitz"}, headers=auth
    )
    assert joined.status == 201
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        str(lobby_client.make_url("/")),
        namespaces=["/lobby"],
        auth={"token": vic["access_token"]},
        transports=["websocket"],
    )
    try:
        assert (await _gauge_and_refusals(lobby_client))[0] == "lobby_socketio_connections 1.0"
        replies: list[Any] = []
        for _ in range(3):
            replies.append(await sio.call("disconnect", namespace="/lobby", timeout=5))
            replies.append(
                await sio.call(
                    "connect", ({}, {"token": vic["access_token"]}), namespace="/lobby", timeout=5
                )
            )
        for reply in replies:
            assert reply["ok"] is False and reply["code"] == "reserved_event", reply
        gauge, refusals = await _gauge_and_refusals(lobby_client)
        assert gauge == "lobby_socketio_connections 1.0"
        assert refusals == 'lobby_socketio_event_refusals_total{code="reserved_event"} 6.0'
        status = await (await lobby_client.get("/api/v1/queue", headers=auth)).json()
        assert [t["mode"] for t in status["tickets"]] == ["duel"]
        # The connection still works.
        assert (await sio.call("queue_status", {}, namespace="/lobby", timeout=5))["tickets"]
    finally:
        await sio.disconnect()
    # A real disconnect still reaches the handlers: the gauge drops and the tickets go
    # (the server handles the close after the client returned: poll for it).
    deadline = time.monotonic() + 10
    while (await _gauge_and_refusals(lobby_client))[0] != "lobby_socketio_connections 0.0":
        assert time.monotonic() < deadline, "the real disconnect did not reach the handler"
        await asyncio.sleep(0.02)  # poll interval
    status = await (await lobby_client.get("/api/v1/queue", headers=auth)).json()
    assert status["tickets"] == []
