"""Waiting for a pool server's report on a match, event-driven.

After a match is allocated (or its cancel is sent), the operator does not wait for
its timer: it reads the match's phase stream (`keys.match_phases`, which the server
writes with its status hash in one transaction) with XREAD BLOCK, and reconciles
the match as soon as the awaited report is there. Waits run on their own small
connection pool (`ack_connections`), each XREAD blocks a short window so a backlog
of waits takes turns, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from tradearena.contracts import keys

log = logging.getLogger(__name__)

Key = tuple[str, str]
WINDOW_MS = 1000  # one XREAD BLOCK; then the connection goes back to the pool


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class AckWaiter:
    def __init__(
        self,
        redis: Redis,
        connections: int,
        on_report: Callable[[Key], Awaitable[None]],
    ) -> None:
        pool = redis.connection_pool
        self.redis = Redis(
            connection_pool=BlockingConnectionPool(
                connection_class=pool.connection_class,
                max_connections=connections,
                timeout=None,  # wait for a free connection: waits take turns
                **pool.connection_kwargs,
            )
        )
        self.on_report = on_report
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._until: dict[Key, frozenset[str]] = {}

    def follow(self, key: Key, match_id: str, until: Collection[str], timeout_s: float) -> None:
        """Reconcile `key` as soon as the server reports one of `until` (ServerPhase)."""
        wanted = frozenset(until)
        current = self._tasks.get(key)
        if current is not None:
            if self._until.get(key) == wanted and not current.done():
                return  # already waiting for that
            current.cancel()
        task = asyncio.create_task(
            self._wait(key, match_id, wanted, timeout_s), name=f"ack-{match_id}"
        )
        self._tasks[key] = task
        self._until[key] = wanted
        task.add_done_callback(lambda t: self._done(key, t))

    def _done(self, key: Key, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            self._tasks.pop(key, None)
            self._until.pop(key, None)

    def forget(self, key: Key) -> None:
        task = self._tasks.pop(key, None)
        self._until.pop(key, None)
        if task is not None:
            task.cancel()

    @property
    def waiting(self) -> int:
        return len(self._tasks)

    async def _wait(self, key: Key, match_id: str, until: frozenset[str], timeout_s: float) -> None:
        stream = keys.match_phases(match_id)
        deadline = time.monotonic() + timeout_s
        last = "0-0"  # the whole stream: the report may already be there
        while time.monotonic() < deadline:
            window = int(min(WINDOW_MS, max(1.0, (deadline - time.monotonic()) * 1000)))
            try:
                got: Any = await self.redis.xread({stream: last}, block=window, count=100)
            except (RedisError, OSError) as exc:
                log.warning("ack wait failed", extra={"match_id": match_id, "error": repr(exc)})
                return  # the timer looks again
            for _, entries in got or []:
                for entry_id, fields in entries:
                    last = _text(entry_id)
                    phase = fields.get(b"phase", fields.get("phase"))
                    if phase is not None and _text(phase) in until:
                        await self.on_report(key)
                        return

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()
