"""The match server's feed from the relay: the relay's Redis stream, read back as ticks
(the wire format is `tradearena.contracts.feed`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from redis.exceptions import RedisError
from tenacity import RetryCallState

from matchserver.feed.sources import Clock, FeedTick, SourceStats, wall_ms
from tradearena.contracts import keys
from tradearena.contracts.feed import MalformedTickError, decode_tick
from tradearena.redisconn import AnyRedis
from tradearena.retry import call_with_retries

log = logging.getLogger(__name__)


def _redis_blip(exc: BaseException) -> bool:
    return isinstance(exc, RedisError | OSError)


@dataclass
class RelaySource:
    """A match server's feed: the last `history_ms` of the stream, then new ticks as they come.

    History first is what lets a (re)started match server rebuild its delay
    window at once. `recv_ms` is the relay's receive time, capped by our clock
    and never going back, so every match server sees the same timeline. A
    Redis outage is retried with backoff (`retry_initial_s` doubling up to
    `retry_max_s`) and continues from the last entry read: nothing still in the
    stream is missed.
    """

    redis: AnyRedis
    symbol: str
    history_ms: int
    clock: Clock = wall_ms
    block_ms: int = 1000
    retry_initial_s: float = 0.1
    retry_max_s: float = 5.0
    name: str = "relay"
    stats: SourceStats = field(default_factory=SourceStats)

    async def ticks(self) -> AsyncGenerator[FeedTick, None]:
        key = keys.feed_stream(self.symbol)
        last_id = f"{max(0, self.clock() - self.history_ms)}-0"
        last_recv = 0
        entries: Any = await self._read(partial(self.redis.xrange, key, min=last_id, max="+"))
        while True:
            for entry_id, raw in entries:
                last_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                try:
                    tick = decode_tick(self.symbol, entry_id, raw)
                except MalformedTickError:
                    self.stats.malformed += 1
                    continue
                last_recv = max(last_recv, min(tick.recv_ms, self.clock()))
                self.stats.last_tick_recv_ms = last_recv
                yield FeedTick(
                    tick.symbol,
                    tick.price,
                    tick.event_ms,
                    last_recv,
                    tick.source,
                    tick.seq,
                    tick.source_ms,
                )
            reply: Any = await self._read(
                partial(self.redis.xread, {key: last_id}, block=self.block_ms, count=500)
            )
            entries = reply[0][1] if reply else []

    async def _read(self, read: Callable[[], Awaitable[Any]]) -> Any:
        result = await call_with_retries(
            read,
            retry_on=_redis_blip,
            initial_s=self.retry_initial_s,
            max_s=self.retry_max_s,
            on_retry=self._on_retry,
        )
        self.stats.connected = True
        return result

    def _on_retry(self, state: RetryCallState) -> None:
        self.stats.connected = False
        self.stats.reconnects += 1
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.upcoming_sleep
        log.warning(
            "relay read failed", extra={"error": repr(error), "delay_ms": int(delay * 1000)}
        )
