"""What a pool server tells Agones besides Ready/Health/Shutdown: its Counter `matches`
(count = matches hosted, capacity) and its List `players` (`<match_id>/<player>` of
every connected player), through the SDK's counter and list calls.

The host's hooks are synchronous (a socket connects, a match leaves); the calls are
queued and made in order by one task, so an add and a remove of the same player never
overtake each other, and a failed call is logged by the SDK and never stops a match.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

MATCHES_COUNTER = "matches"
PLAYERS_LIST = "players"


class PoolReport:
    def __init__(self, sdk: object, capacity: int) -> None:
        self.sdk = sdk
        self.capacity = capacity
        self._calls: asyncio.Queue[tuple[str, tuple[Any, ...], dict[str, Any]]] = asyncio.Queue()
        self._missing: set[str] = set()

    def matches(self, count: int) -> None:
        self._calls.put_nowait(
            ("update_counter", (MATCHES_COUNTER,), {"count": count, "capacity": self.capacity})
        )

    def player(self, match_id: str, player: str, connected: bool) -> None:
        call = "list_add" if connected else "list_remove"
        self._calls.put_nowait((call, (PLAYERS_LIST, f"{match_id}/{player}"), {}))

    async def run(self) -> None:
        while True:
            name, args, kwargs = await self._calls.get()
            await self._call(name, *args, **kwargs)

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        method: Callable[..., Awaitable[Any]] | None = getattr(self.sdk, name, None)
        if method is None:  # an SDK without counters and lists: Ready/Health only
            if name not in self._missing:
                self._missing.add(name)
                log.warning("agones sdk lacks a call", extra={"call": name})
            return
        try:
            await method(*args, **kwargs)
        except Exception as exc:  # reporting never stops a match
            log.warning("agones sdk call failed", extra={"call": name, "error": repr(exc)})
