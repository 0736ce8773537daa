"""Which browser pages may open a socket to the match server: the lobby's origins only.

A browser always sends `Origin` with a WebSocket handshake and with cross-origin
requests; bots, native clients and socket.io-client under Node send none. Real
process, real Redis, real python-socketio clients that set the header themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from tradearena.testing.matchserver import MatchServerProcess

NAMESPACE = "/match"
LOBBY = "http://lobby.test:8080"


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[MatchServerProcess]:
    proc = MatchServerProcess(
        tmp_path,
        redis_url,
        "m-origins",
        ("alice", "bob"),
        env_extra={"TRADEARENA_CORS_ORIGINS": json.dumps([LOBBY])},
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def _connect(
    server: MatchServerProcess, player: str, origin: str | None
) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    headers = {} if origin is None else {"Origin": origin}
    await sio.connect(
        server.url,
        namespaces=[NAMESPACE],
        transports=["websocket"],
        headers=headers,
        auth={"token": server.token(player)},
        wait_timeout=10,
    )
    return sio


async def _refused(server: MatchServerProcess, origin: str, transport: str) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(
                server.url,
                namespaces=[NAMESPACE],
                transports=[transport],
                headers={"Origin": origin},
                auth={"token": server.token("alice")},
                wait_timeout=10,
            )
    finally:
        await sio.disconnect()


async def _sync(sio: socketio.AsyncClient) -> Any:
    reply = await sio.call("sync", {}, namespace=NAMESPACE, timeout=10)
    return reply["state"]["phase"]


async def _metrics(server: MatchServerProcess) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{server.admin_url}/metrics") as resp:
        return await resp.text()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_page_from_another_origin_is_refused(
    server: MatchServerProcess, transport: str
) -> None:
    await _refused(server, "http://evil.example", transport)
    # The same host with another scheme is another origin.
    await _refused(server, "https://lobby.test:8080", transport)
    metrics = await _metrics(server)
    assert 'tradearena_match_connection_refusals_total{code="origin_not_allowed"} 2.0' in metrics


async def test_the_refusal_is_a_stable_error_before_any_socket(
    server: MatchServerProcess,
) -> None:
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Origin": "http://evil.example"}) as resp:
            assert resp.status == 403
            body = await resp.json()
            assert body["code"] == "origin_not_allowed" and body["message"]
            assert "Access-Control-Allow-Origin" not in resp.headers
        async with http.get(url, headers={"Origin": LOBBY}) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == LOBBY


async def test_the_lobby_page_and_clients_without_an_origin_connect(
    server: MatchServerProcess,
) -> None:
    # (polling from the lobby's origin: test_the_refusal_is_a_stable_error_before_any_socket)
    browser = await _connect(server, "alice", LOBBY)
    bot = await _connect(server, "bob", None)
    try:
        assert await _sync(browser) in ("waiting", "live")
        assert await _sync(bot) in ("waiting", "live")
    finally:
        await browser.disconnect()
        await bot.disconnect()
    assert "origin_not_allowed" not in await _metrics(server)
