"""Waiting for pool servers' reports on matches, event-driven, with one reader.

After a match is allocated (or its cancel is sent), the operator does not wait for
its timer: it reads the match's phase stream (`keys.match_phases`, which the server
writes with its status hash in one transaction) and reconciles the match as soon as
the awaited report is there. One reader follows every awaited stream
(`tradearena.orchestration.phasewatch`: one blocking XREAD on one Redis, on a
connection of its own so it never holds one others need; per-slot reads every 50 ms
on a Redis Cluster). Every wait is bounded; a Redis error ends nothing (the timer
looks again) and reading resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Collection, Coroutine
from typing import Any

from redis.asyncio import Redis

from tradearena.orchestration.phasewatch import PhaseWatch
from tradearena.redisconn import AnyRedis

Key = tuple[str, str]


class AckWaiter:
    def __init__(
        self,
        redis: AnyRedis,
        connections: int,
        on_report: Callable[[Key], Coroutine[Any, Any, None]],
    ) -> None:
        self._own: Redis | None = None
        if isinstance(redis, Redis):
            # A client of its own: the blocking read never holds a connection others
            # need. `connections` bounds it (the reader uses one; wake-ups another).
            pool = redis.connection_pool
            self._own = Redis(
                connection_pool=type(pool)(
                    connection_class=pool.connection_class,
                    max_connections=max(2, connections),
                    **dict(pool.connection_kwargs),
                )
            )
        # A cluster is read without blocking: the shared client serves.
        self.watch = PhaseWatch(
            self._own if self._own is not None else redis, f"operator-{uuid.uuid4().hex}"
        )
        self.on_report = on_report
        self._awaited: dict[str, tuple[Key, frozenset[str]]] = {}  # match -> (key, until)
        self._reports: set[asyncio.Task[None]] = set()

    def follow(self, key: Key, match_id: str, until: Collection[str], timeout_s: float) -> None:
        """Reconcile `key` as soon as the server reports one of `until` (ServerPhase)."""
        wanted = frozenset(until)
        if self._awaited.get(match_id) == (key, wanted) and self.watch.following(match_id):
            return  # already waiting for that

        async def on_phase(phase: str | None) -> bool:
            if phase is None or phase not in wanted:
                return False
            self._awaited.pop(match_id, None)
            task = asyncio.create_task(self.on_report(key))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)
            return True

        for ended in [m for m in self._awaited if not self.watch.following(m)]:
            del self._awaited[ended]  # timed out: the timer looks again
        self._awaited[match_id] = (key, wanted)
        self.watch.follow(match_id, on_phase, timeout_s=timeout_s, restart=True)

    def forget(self, key: Key) -> None:
        for match_id in [m for m, (k, _) in self._awaited.items() if k == key]:
            del self._awaited[match_id]
            self.watch.unfollow(match_id)

    @property
    def waiting(self) -> int:
        return self.watch.count

    async def close(self) -> None:
        await self.watch.close()
        for task in list(self._reports):
            task.cancel()
        if self._own is not None:
            await self._own.aclose()
            await self._own.connection_pool.disconnect()
