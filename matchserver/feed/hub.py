"""One feed reader per symbol per process, fanned out to every match it hosts.

A pool server hosts many matches of the same symbol: one XREAD loop per match
would multiply Redis reads and decode work by the matches. A `FeedHub` reads
the symbol once (the relay's stream, or the in-process synthetic prices),
keeps the last `history_ms` of ticks, and gives each subscriber that history
first and then every new tick, in order, exactly as `RelaySource` gives one
match: a match that starts later warms its delay window at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable

from matchserver.feed.sources import Clock, FeedTick, wall_ms

log = logging.getLogger(__name__)

Reader = Callable[[], AsyncIterator[FeedTick]]  # a fresh read of the symbol, history first


class FeedHub:
    def __init__(
        self,
        symbol: str,
        reader: Reader,
        history_ms: int,
        *,
        clock: Clock = wall_ms,
        retry_s: float = 1.0,
    ) -> None:
        self.symbol = symbol
        self.reader = reader
        self.history_ms = history_ms
        self.clock = clock
        self.retry_s = retry_s
        self.history: deque[FeedTick] = deque()
        self.subscribers: set[asyncio.Queue[FeedTick]] = set()
        self.warm = asyncio.Event()  # set by the first tick (history included)
        self.last_key: tuple[int, int] | None = None
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"feed-hub:{self.symbol}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        """Read for ever: a reader that ends or raises is started again (it re-reads its
        history; what was already handed out is skipped by tick identity)."""
        while True:
            try:
                async for tick in self.reader():
                    self.publish(tick)
            except asyncio.CancelledError:
                raise
            except Exception:  # the feed of every hosted match depends on it
                self.failures += 1
                log.exception("feed reader failed", extra={"symbol": self.symbol})
            await asyncio.sleep(self.retry_s)

    def publish(self, tick: FeedTick) -> None:
        """Keep and fan out one tick (never a tick at or before the newest one)."""
        key = tick.key()
        if self.last_key is not None and key <= self.last_key:
            return
        self.last_key = key
        self.history.append(tick)
        horizon = self.clock() - self.history_ms
        while self.history and self.history[0].recv_ms < horizon:
            self.history.popleft()
        for queue in self.subscribers:
            queue.put_nowait(tick)
        self.warm.set()

    async def ticks(self) -> AsyncGenerator[FeedTick, None]:
        """The history, then every new tick."""
        history, live = self.subscribe()
        try:
            for tick in history:
                yield tick
            async for tick in live:
                yield tick
        finally:
            await live.aclose()

    def subscribe(self) -> tuple[list[FeedTick], AsyncGenerator[FeedTick, None]]:
        """The history now, and every tick after it. Copied and registered in one step
        (no await between), so nothing is missed or repeated. Apart, so that a match can
        take in its whole history before its clock first runs (`MatchRunner.start_loops`)."""
        queue: asyncio.Queue[FeedTick] = asyncio.Queue()
        backlog = list(self.history)
        self.subscribers.add(queue)
        return backlog, self._live(queue)

    async def _live(self, queue: asyncio.Queue[FeedTick]) -> AsyncGenerator[FeedTick, None]:
        try:
            while True:
                yield await queue.get()
        finally:
            self.subscribers.discard(queue)
