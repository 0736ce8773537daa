"""Archive one match (Redis in, PostgreSQL out), then give its Redis keys an expiry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

import asyncpg

from lobby.results.archive import db
from lobby.results.archive.metrics import ArchiveMetrics
from lobby.results.archive.retention import expiring_keys, expiry_s
from lobby.results.archive.source import read_match
from tradearena.contracts.archive import Archive, ArchiveError, Codec, build
from tradearena.redisconn import AnyRedis

log = logging.getLogger("lobby.results.archive")

Outcome = Literal["archived", "expired", "done", "not_stored", "failed"]
GetPool = Callable[[], Awaitable[asyncpg.Pool]]


class Archiver:
    def __init__(
        self,
        redis: AnyRedis,
        pool: GetPool,
        metrics: ArchiveMetrics,
        *,
        grace_s: int,
        codec: Codec,
        sweep_window_s: float,
        sweep_batch: int = 50,
        concurrency: int = 2,
        max_pending: int = 1000,
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.metrics = metrics
        self.grace_s = grace_s
        self.codec = codec
        self.sweep_window_s = sweep_window_s
        self.sweep_batch = sweep_batch
        self._cursor: datetime | None = None
        self.max_pending = max_pending
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeping: asyncio.Task[int] | None = None

    # -- in the background: the results path never waits for an archive ----------

    def schedule(self, match_id: str) -> None:
        """Archive in the background. Beyond `max_pending` waiting, nothing is started:
        the sweep finds the match in PostgreSQL later."""
        if len(self._tasks) >= self.max_pending:
            log.info("archive deferred to the sweep", extra={"match_id": match_id})
            return
        self._track(asyncio.create_task(self._archive_in_slot(match_id)))

    def schedule_sweep(self) -> None:
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = asyncio.create_task(self.sweep())
            self._track(self._sweeping)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _archive_in_slot(self, match_id: str) -> Outcome:
        async with self._slots:
            return await self.archive(match_id)

    async def idle(self) -> None:
        """Until every scheduled archive and sweep is done."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Cancel what is under way (an archive cut short is finished by a later sweep:
        the keys get their expiry only after the row is committed)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def archive(self, match_id: str) -> Outcome:
        """Archive the match unless done, then expire its keys; never raises (a failure
        is counted and logged, the sweep tries again, the keys keep no expiry)."""
        try:
            return await self._archive(match_id)
        except ArchiveError as exc:
            self.metrics.failures.labels(exc.code).inc()
            log.warning(
                "match not archived",
                extra={"match_id": match_id, "reason": exc.code, "error": str(exc)},
            )
        except Exception as exc:
            self.metrics.failures.labels("error").inc()
            log.warning("match not archived", extra={"match_id": match_id, "error": repr(exc)})
        return "failed"

    async def _archive(self, match_id: str) -> Outcome:
        pool = await self.pool()
        async with pool.acquire() as conn:
            stored = await db.stored_match(conn, match_id)
        if stored is None:
            return "not_stored"
        if stored.redis_expire_at is not None:
            return "done"
        outcome: Outcome = "expired"
        if not stored.archived:
            archive = await self._build(stored)
            async with pool.acquire() as conn:
                inserted = await db.insert(conn, archive)
            if inserted:
                outcome = "archived"
                self.metrics.archived.inc()
                self.metrics.bytes.labels("raw").observe(archive.raw_bytes)
                self.metrics.bytes.labels("compressed").observe(archive.compressed_bytes)
                log.info(
                    "match archived",
                    extra={
                        "match_id": match_id,
                        "raw_bytes": archive.raw_bytes,
                        "compressed_bytes": archive.compressed_bytes,
                    },
                )
        ttl = await self._expire(match_id)
        async with pool.acquire() as conn:
            await db.mark_expiring(conn, match_id, ttl)
        self.metrics.expired.inc()
        return outcome

    async def _build(self, stored: db.StoredMatch) -> Archive:
        header, entries, result = await self._read(stored.match_id)
        return await asyncio.to_thread(
            build,
            stored.match_id,
            header,
            entries,
            result,
            log_entries=stored.log_entries,
            expected_digest=stored.log_digest,
            codec=self.codec,
        )

    async def _read(
        self, match_id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        record = await read_match(self.redis, match_id)
        if record is None:
            raise ArchiveError("missing", "the match's header or result is not in Redis")
        return record

    async def _expire(self, match_id: str) -> int:
        ttl = expiry_s(self.grace_s)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in expiring_keys(match_id):
                pipe.expire(key, ttl, lt=True)
            await pipe.execute()
        return ttl

    async def sweep(self) -> int:
        """Finish what the follow-ups left undone (a crash, PostgreSQL or Redis away), one
        batch per call, resuming after the last match seen: every unfinished match of
        the window comes round, however many keep failing. Returns the matches tried."""
        try:
            pool = await self.pool()
            async with pool.acquire() as conn:
                todo = await db.unfinished(
                    conn, self.sweep_window_s, self._cursor, self.sweep_batch
                )
        except Exception as exc:
            self.metrics.failures.labels("error").inc()
            log.warning("archive sweep failed", extra={"error": repr(exc)})
            return 0
        self._cursor = todo[-1][1] if len(todo) == self.sweep_batch else None
        for match_id, _stored_at in todo:
            await self._archive_in_slot(match_id)
        return len(todo)
