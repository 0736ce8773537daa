"""A Python Socket.IO client of one player on a match server, recording every event.

Tests drive the real `/match` protocol with it: connect with a match token, act,
sync, call any event, and wait for events (awaited, never slept for).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import socketio

from matchserver.handlers import NAMESPACE
from tradearena.launcher.dial import DialOptions


class Server(Protocol):
    """What the client needs of a match server under test."""

    @property
    def url(self) -> str: ...

    def token(self, player: str) -> str: ...


class MatchClient:
    """One connection of a player (a tab): every event it receives is in `events`."""

    def __init__(self, server: Server, name: str, dial: DialOptions | None = None) -> None:
        """`dial`: the CA trusted for wss:// and a host map (None: the system's)."""
        self.server = server
        self.name = name
        self.sio = socketio.AsyncClient(
            reconnection=False, http_session=dial.session if dial is not None else None
        )
        self.events: list[tuple[str, Any]] = []
        self.received_ms: list[int] = []  # wall-clock time each of `events` arrived
        self.arrived = asyncio.Event()
        self.refused: Any = None

        @self.sio.on("*", namespace=NAMESPACE)
        async def any_event(event: str, data: Any) -> None:
            self.received_ms.append(time.time_ns() // 1_000_000)
            self.events.append((event, data))
            self.arrived.set()

        @self.sio.on("connect_error", namespace=NAMESPACE)
        async def refused(data: Any) -> None:
            self.refused = data

    async def connect(self, token: str | None = None) -> None:
        await self.sio.connect(
            self.server.url,
            namespaces=[NAMESPACE],
            transports=["websocket"],
            auth={"token": token or self.server.token(self.name)},
        )

    async def call(self, event: str, *args: Any) -> Any:
        """Any event, with its acknowledgement (several arguments travel as a list)."""
        data: Any = None if not args else args[0] if len(args) == 1 else args
        return await self.sio.call(event, data, namespace=NAMESPACE, timeout=10)

    async def act(self, **action: Any) -> dict[str, Any]:
        ack: dict[str, Any] = await self.call("action", action)
        return ack

    async def sync(self) -> dict[str, Any]:
        reply: dict[str, Any] = await self.call("sync", {})
        state: dict[str, Any] = reply["state"]
        return state

    async def until(
        self, done: Callable[[list[tuple[str, Any]]], bool], within: float = 20
    ) -> None:
        """Wait until `done(events)` holds."""

        async def seek() -> None:
            while not done(self.events):
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(seek(), within)

    async def wait_for(self, kind: str, predicate: Any = None, within: float = 20) -> Any:
        """The first event of `kind` (matching `predicate`) received so far or from now."""
        found: list[Any] = []

        def done(events: list[tuple[str, Any]]) -> bool:
            for event, data in events:
                if event == kind and (predicate is None or predicate(data)):
                    found.append(data)
                    return True
            return False

        await self.until(done, within)
        return found[0]

    async def next_ticks(self, n: int) -> None:
        """Wait for `n` ticks sent after this call: whatever the server queued for this
        socket before them has arrived by then."""
        start = len(self.events)
        await self.until(lambda events: sum(e == "tick" for e, _ in events[start:]) >= n)

    def player_events(self, about: str) -> list[str]:
        return [d["status"] for e, d in self.events if e == "player" and d["player"] == about]

    async def close(self) -> None:
        await self.sio.disconnect()
