"""Waiting for pool servers' reports on matches, event-driven, with one reader.

After a match is allocated (or its cancel is sent), the operator does not wait for
its timer: it reads the match's phase stream (`keys.match_phases`, which the server
writes with its status hash in one transaction) and reconciles the match as soon as
the awaited report is there. One task reads every awaited stream with a single
blocking XREAD on a connection of its own (a burst of allocations is one read, not a
connection or a turn each); a new wait wakes that read at once through the
operator's own wake stream. Every wait is bounded; a Redis error ends nothing (the
timer looks again) and reading resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tradearena.contracts import keys

log = logging.getLogger(__name__)

Key = tuple[str, str]
BLOCK_MS = 1000  # one XREAD BLOCK at most; deadlines are checked between reads


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class _Wait:
    key: Key
    until: frozenset[str]
    deadline: float
    last: str = "0-0"  # the whole stream: the report may already be there


class AckWaiter:
    def __init__(
        self,
        redis: Redis,
        connections: int,
        on_report: Callable[[Key], Coroutine[Any, Any, None]],
    ) -> None:
        # A client of its own: the blocking read never holds a connection others need.
        # `connections` bounds it (the reader uses one; wake-ups another).
        kwargs = dict(redis.connection_pool.connection_kwargs)
        self.redis = Redis(
            connection_pool=type(redis.connection_pool)(
                connection_class=redis.connection_pool.connection_class,
                max_connections=max(2, connections),
                **kwargs,
            )
        )
        self.on_report = on_report
        self.wake_key = keys.runtime_wake(f"operator-{uuid.uuid4().hex}")
        self._waits: dict[str, _Wait] = {}  # stream -> its wait
        self._wake_last = "$"
        self._task: asyncio.Task[None] | None = None
        self._reports: set[asyncio.Task[None]] = set()
        self._closed = False

    def follow(self, key: Key, match_id: str, until: Collection[str], timeout_s: float) -> None:
        """Reconcile `key` as soon as the server reports one of `until` (ServerPhase)."""
        stream = keys.match_phases(match_id)
        wanted = frozenset(until)
        current = self._waits.get(stream)
        if current is not None and current.until == wanted:
            return  # already waiting for that
        self._waits[stream] = _Wait(key, wanted, time.monotonic() + timeout_s)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ack-reader")
        waking = asyncio.create_task(self._wake())
        self._reports.add(waking)
        waking.add_done_callback(self._reports.discard)

    def forget(self, key: Key) -> None:
        for stream in [s for s, w in self._waits.items() if w.key == key]:
            del self._waits[stream]

    @property
    def waiting(self) -> int:
        return len(self._waits)

    async def _wake(self) -> None:
        try:
            await self.redis.xadd(self.wake_key, {"wake": "1"}, maxlen=100, approximate=True)
        except (RedisError, OSError) as exc:  # the next read (within a second) has it
            log.warning("ack reader not woken", extra={"error": repr(exc)})

    async def _run(self) -> None:
        while not self._closed:
            now = time.monotonic()
            for stream in [s for s, w in self._waits.items() if w.deadline <= now]:
                del self._waits[stream]  # bounded: the timer looks again
            streams: dict[Any, Any] = {self.wake_key: self._wake_last}
            streams.update({s: w.last for s, w in self._waits.items()})
            try:
                reply: Any = await self.redis.xread(streams, block=BLOCK_MS, count=100)
            except (RedisError, OSError) as exc:
                log.warning("ack read failed", extra={"error": repr(exc)})
                await asyncio.sleep(0.5)
                continue
            for raw_stream, entries in reply or []:
                stream = _text(raw_stream)
                if stream == self.wake_key:
                    self._wake_last = _text(entries[-1][0])
                    continue
                wait = self._waits.get(stream)
                if wait is None:
                    continue  # forgotten meanwhile
                for entry_id, fields in entries:
                    wait.last = _text(entry_id)
                    phase = fields.get(b"phase", fields.get("phase"))
                    if phase is not None and _text(phase) in wait.until:
                        del self._waits[stream]
                        task = asyncio.create_task(self.on_report(wait.key))
                        self._reports.add(task)
                        task.add_done_callback(self._reports.discard)
                        break

    async def close(self) -> None:
        self._closed = True
        self._waits.clear()
        if self._task is not None:
            await self._wake()
            done, _ = await asyncio.wait({self._task}, timeout=BLOCK_MS / 1000 + 1)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        for task in list(self._reports):
            task.cancel()
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self.wake_key)
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()
