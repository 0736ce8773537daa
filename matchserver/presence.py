"""How many players a match has connected, in its status hash, coalesced.

Connects and disconnects can come in bursts (a reconnect storm, a match of a
hundred players starting); the status hash gets the newest count at most once
per interval, and always the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Write = Callable[[int, int], Awaitable[None]]  # (connected, players)


class Presence:
    def __init__(
        self,
        write: Write,
        interval_ms: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        label: str = "",
    ) -> None:
        self._write = write
        self._interval_s = interval_ms / 1000
        self._clock = clock
        self._label = label
        self._wanted: tuple[int, int] | None = None
        self._written: tuple[int, int] | None = None
        self._last_s: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.writes = 0

    def update(self, connected: int, players: int) -> None:
        """The newest counts; written now, or when the interval since the last write ends."""
        self._wanted = (connected, players)
        if self._task is None and self._wanted != self._written:
            self._task = asyncio.create_task(self._flush(), name=f"presence:{self._label}")

    async def _flush(self) -> None:
        try:
            while self._wanted is not None and self._wanted != self._written:
                if self._last_s is not None:
                    wait = self._last_s + self._interval_s - self._clock()
                    if wait > 0:
                        await asyncio.sleep(wait)
                wanted = self._wanted
                self._last_s = self._clock()
                try:
                    await self._write(*wanted)
                except Exception as exc:  # informative only: retried next interval
                    log.warning(
                        "presence not written", extra={"match": self._label, "error": repr(exc)}
                    )
                    continue
                self._written = wanted
                self.writes += 1
        finally:
            self._task = None

    async def close(self) -> None:
        """Stop; a pending write is given up (the match is leaving)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
