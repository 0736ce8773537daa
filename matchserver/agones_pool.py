"""What a pool server tells Agones besides Ready/Health/Shutdown: its Counter `matches`
(count = matches hosted, capacity) and its List `players` (`<match_id>/<player>` of
every connected player), named in `tradearena.contracts.agones`.

The host's hooks are synchronous (a socket connects, a match leaves); the calls are
queued and made in order by one task, so an add and a remove of the same player never
overtake each other. The SDK's reports never raise (a failure is logged and counted
there), so reporting never stops a match.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from matchserver.agones import AgonesSDK
from tradearena.contracts.agones import MATCHES_COUNTER, PLAYERS_LIST, player_entry


class PoolReport:
    def __init__(self, sdk: AgonesSDK, capacity: int) -> None:
        self.sdk = sdk
        self.capacity = capacity
        self._calls: asyncio.Queue[Callable[[], Awaitable[bool]]] = asyncio.Queue()

    def matches(self, count: int) -> None:
        self._calls.put_nowait(
            lambda: self.sdk.update_counter(MATCHES_COUNTER, count=count, capacity=self.capacity)
        )

    def player(self, match_id: str, player: str, connected: bool) -> None:
        entry = player_entry(match_id, player)
        if connected:
            self._calls.put_nowait(lambda: self.sdk.list_add(PLAYERS_LIST, entry))
        else:
            self._calls.put_nowait(lambda: self.sdk.list_remove(PLAYERS_LIST, entry))

    async def run(self) -> None:
        while True:
            call = await self._calls.get()
            await call()
