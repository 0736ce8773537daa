"""The match server against clients that do what a well-behaved client never does:
real process, real Redis, real Socket.IO clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import socketio

from tradearena.contracts import keys
from tradearena.testing.matchserver import MatchServerProcess

PLAYERS = ("alice", "bob")
NAMESPACE = "/match"


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[MatchServerProcess]:
    proc = MatchServerProcess(
        tmp_path, redis_url, "m-hostile", PLAYERS, env_extra={"TRADEARENA_DURATION_MS": "600000"}
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


class Tab:
    """One socket.io connection of a player that records every event it receives."""

    def __init__(self, server: MatchServerProcess, name: str) -> None:
        self.server = server
        self.name = name
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.arrived = asyncio.Event()

        @self.sio.on("*", namespace=NAMESPACE)
        async def any_event(event: str, data: Any) -> None:
            self.events.append((event, data))
            self.arrived.set()

    async def connect(self) -> None:
        await self.sio.connect(
            self.server.url,
            namespaces=[NAMESPACE],
            transports=["websocket"],
            auth={"token": self.server.token(self.name)},
        )

    async def call(self, event: str, *args: Any) -> Any:
        data: Any = None if not args else args[0] if len(args) == 1 else args
        return await self.sio.call(event, data, namespace=NAMESPACE, timeout=10)

    async def sync(self) -> dict[str, Any]:
        reply: dict[str, Any] = await self.call("sync", {})
        return reply["state"]

    async def wait_for(self, kind: str, predicate: Any = None, within: float = 20) -> Any:
        async def seek() -> Any:
            seen = 0
            while True:
                for event, data in self.events[seen:]:
                    if event == kind and (predicate is None or predicate(data)):
                        return data
                seen = len(self.events)
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(seek(), within)

    async def until(
        self, done: Callable[[list[tuple[str, Any]]], bool], within: float = 20
    ) -> None:
        async def seek() -> None:
            while not done(self.events):
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(seek(), within)

    async def next_ticks(self, n: int) -> None:
        """Wait for `n` ticks sent after this call: whatever the server queued for this
        socket before them has arrived by then."""
        start = len(self.events)
        await self.until(lambda events: sum(e == "tick" for e, _ in events[start:]) >= n)

    def player_events(self, about: str) -> list[str]:
        return [d["status"] for e, d in self.events if e == "player" and d["player"] == about]

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest.fixture
async def tabs() -> AsyncIterator[list[Tab]]:
    opened: list[Tab] = []
    yield opened
    for tab in opened:
        await tab.close()


async def open_tab(tabs: list[Tab], server: MatchServerProcess, name: str) -> Tab:
    tab = Tab(server, name)
    tabs.append(tab)
    await tab.connect()
    return tab


def log_kinds(server: MatchServerProcess) -> list[tuple[str, str | None]]:
    client = redis.Redis.from_url(server.redis_url)
    try:
        rows = client.lrange(keys.match_log(server.match_id), 0, -1)
    finally:
        client.close()
    entries = [json.loads(row) for row in rows]
    return [(e["kind"], e.get("player")) for e in entries if e["kind"] != "price"]


async def http_get(url: str) -> tuple[dict[str, Any] | None, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        text = await resp.text()
    return (json.loads(text) if text.startswith("{") else None), text


async def both_live(tabs: list[Tab], server: MatchServerProcess) -> tuple[Tab, Tab]:
    alice = await open_tab(tabs, server, "alice")
    bob = await open_tab(tabs, server, "bob")
    await alice.wait_for("phase", lambda d: d["phase"] == "live")
    await bob.wait_for("phase", lambda d: d["phase"] == "live")
    return alice, bob


async def test_client_events_named_connect_or_disconnect_reach_no_handler(
    server: MatchServerProcess, tabs: list[Tab]
) -> None:
    alice, bob = await both_live(tabs, server)
    before = log_kinds(server)
    token = server.token("alice")
    refusals = []
    for _ in range(5):  # a replayed connect with a valid token in the auth position
        refusals.append(await alice.call("connect", {}, {"token": token}))
    refusals.append(await alice.call("connect"))
    refusals.append(await alice.call("disconnect", "client namespace disconnect"))
    refusals.append(await alice.call("connect_error", {"message": "x"}))
    for reply in refusals:
        assert reply["ok"] is False and reply["code"] == "reserved_event", reply
        assert reply["message"]
    # Nothing reached the engine: no log entry, nobody shown disconnected, alice still
    # trades and still gets ticks.
    assert log_kinds(server) == before
    status, _ = await http_get(f"{server.admin_url}/status")
    assert status is not None and status["connected"] == 2
    assert (await alice.call("action", {"type": "close", "client_order_id": "h-1"}))[
        "code"
    ] == "no_position"
    await bob.next_ticks(2)
    await alice.next_ticks(2)
    assert bob.player_events("alice") == []
    _, metrics = await http_get(f"{server.admin_url}/metrics")
    assert 'tradearena_match_event_refusals_total{code="reserved_event"} 8.0' in metrics
    # The real transport events still reach the handlers.
    await alice.close()
    await bob.wait_for("player", lambda d: d["player"] == "alice" and d["status"] != "connected")
    assert bob.player_events("alice") == ["disconnected"]


async def test_events_with_extra_arguments_get_an_answer(
    server: MatchServerProcess, tabs: list[Tab]
) -> None:
    alice, _ = await both_live(tabs, server)
    close = {"type": "close", "client_order_id": "x-1"}
    reply = await alice.call("action", close, {"more": 1})
    assert reply == {"ok": False, "code": "invalid_action", "message": reply["message"]}
    assert "one argument" in reply["message"]
    reply = await alice.call("action", close, "x", 3)
    assert (reply["ok"], reply["code"]) == (False, "invalid_action")
    # sync ignores what it does not read
    assert (await alice.call("sync", {}, {"more": 1}))["state"]["phase"] == "live"
    # the refused calls used nothing up: the same client_order_id is still new
    assert (await alice.call("action", close))["code"] == "no_position"
    _, metrics = await http_get(f"{server.admin_url}/metrics")
    assert 'tradearena_match_actions_total{code="invalid_action"} 2.0' in metrics


async def test_a_newer_tab_replaces_the_older_without_using_a_reconnect(
    server: MatchServerProcess, tabs: list[Tab]
) -> None:
    first, bob = await both_live(tabs, server)
    opened = await first.call(
        "action",
        {"type": "open", "client_order_id": "t-1", "side": "long", "margin": "500", "leverage": 2},
    )
    assert opened["ok"], opened
    reconnects = (await first.sync())["reconnects_left"]
    older = first
    for _ in range(reconnects + 2):  # more tabs than reconnects allowed
        newer = await open_tab(tabs, server, "alice")
        await older.wait_for("replaced")
        older = newer
    state = await older.sync()
    assert state["reconnects_left"] == reconnects
    assert state["position"] is not None and state["position"]["side"] == "long"
    await bob.next_ticks(2)
    assert bob.player_events("alice") == []
    assert ("disconnect", "alice") not in log_kinds(server)
    closed = await older.call("action", {"type": "close", "client_order_id": "t-2"})
    assert closed["ok"], closed
    _, metrics = await http_get(f"{server.admin_url}/metrics")
    assert "tradearena_match_reconnects_total 0.0" in metrics
    assert "tradearena_match_players_connected 2.0" in metrics
