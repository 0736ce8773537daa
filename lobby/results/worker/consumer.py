"""The consumer-group loop: read, store with retries, XACK after commit, reclaim what
another consumer left pending, dead-letter what can never be stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import asyncpg
from opentelemetry.trace import SpanKind
from redis.exceptions import RedisError, ResponseError
from tenacity import RetryCallState

from lobby.results.archive.archiver import Archiver
from lobby.results.archive.metrics import ArchiveMetrics
from lobby.results.worker.metrics import ResultsMetrics
from lobby.results.worker.parsing import PoisonError, is_transient, parse_entry
from lobby.results.worker.settings import ResultsWorkerSettings
from lobby.results.worker.store import StoredNotification, store_result
from tradearena import tracing
from tradearena.contracts import keys
from tradearena.contracts.deadletter import Reason, dead_letter_fields, entry_ms
from tradearena.contracts.results import MatchResult
from tradearena.contracts.tracing import RESULT_FIELD
from tradearena.modes import Catalogue
from tradearena.redisconn import AnyRedis
from tradearena.retry import call_with_retries

log = logging.getLogger("lobby.results")
_tracer = tracing.tracer("lobby.results.worker")

Outcome = Literal["stored", "duplicate", "dead", "deferred"]


Publish = Callable[[Sequence[StoredNotification]], Awaitable[None]]


class ResultsWorker:
    def __init__(
        self,
        redis: AnyRedis,
        catalogue: Catalogue,
        settings: ResultsWorkerSettings,
        metrics: ResultsMetrics | None = None,
        publish: Publish | None = None,
    ) -> None:
        self.redis = redis
        self.catalogue = catalogue
        self.settings = settings
        self.metrics = metrics or ResultsMetrics()
        self.publish = publish
        self.stopping = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._last_reclaim = 0.0
        self._resume = True  # read our own pending entries first (at start, after an outage)
        self.archiver = Archiver(
            redis,
            self.pool,
            ArchiveMetrics(self.metrics.registry),
            grace_s=settings.results_archive_grace_s,
            codec=settings.results_archive_codec,
            sweep_window_s=settings.results_archive_sweep_window_s,
        )
        self._last_sweep = 0.0

    # -- plumbing --------------------------------------------------------------

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            # min_size=0: the worker starts (and keeps its place in the stream) while
            # PostgreSQL is down; connections are made on demand and replaced when broken.
            self._pool = await asyncpg.create_pool(
                self.settings.database_url, min_size=0, max_size=4, command_timeout=30
            )
        return self._pool

    async def close(self) -> None:
        await self.archiver.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(
                keys.RESULTS_STREAM, keys.RESULTS_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _ack(self, entry_id: str) -> None:
        await self.redis.xack(keys.RESULTS_STREAM, keys.RESULTS_GROUP, entry_id)

    async def dead_letter(
        self, entry_id: str, fields: Mapping[Any, Any], reason: Reason, error: str
    ) -> None:
        dead: dict[Any, Any] = dead_letter_fields(entry_id, fields, reason, error)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(keys.RESULTS_DEAD_LETTER, dead)
            pipe.xack(keys.RESULTS_STREAM, keys.RESULTS_GROUP, entry_id)
            await pipe.execute()
        self.metrics.dead_lettered.labels(reason).inc()
        log.warning("result dead-lettered", extra={"entry": entry_id, "reason": reason})

    # -- one entry -------------------------------------------------------------

    def _stop_retrying(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if self.stopping.is_set():
            return True
        if is_transient(exc):
            return False
        return state.attempt_number >= self.settings.results_max_attempts

    def _count_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        kind = "transient" if is_transient(exc) else "error"
        self.metrics.retries.labels(kind).inc()
        log.warning(
            "storing a result failed, retrying",
            extra={"attempt": state.attempt_number, "kind": kind, "error": repr(exc)},
        )

    async def _store_with_retries(
        self, result: MatchResult, entry_id: str
    ) -> list[StoredNotification] | None:
        bankroll = self.catalogue.mode(result.mode).rules.bankroll

        async def attempt() -> list[StoredNotification] | None:
            pool = await self.pool()
            async with pool.acquire() as conn:
                t0 = time.perf_counter()
                notes = await store_result(conn, result, entry_id, bankroll)
                self.metrics.store_seconds.observe(time.perf_counter() - t0)
                return notes

        return await call_with_retries(
            attempt,
            retry_on=lambda e: not isinstance(e, PoisonError),
            initial_s=self.settings.results_backoff_initial_s,
            max_s=self.settings.results_backoff_max_s,
            stop=self._stop_retrying,
            on_retry=self._count_retry,
        )

    async def handle(self, entry_id: str, fields: Mapping[Any, Any]) -> Outcome:
        """Store one entry; traced as `results.store` in the match's trace (the entry's
        `traceparent`), the last span of a match."""
        if not tracing.enabled():
            return await self._handle(entry_id, fields)
        raw = fields.get(RESULT_FIELD.encode(), fields.get(RESULT_FIELD))
        traceparent = raw.decode() if isinstance(raw, bytes) else raw
        with _tracer.start_as_current_span(
            "results.store",
            context=tracing.context_of(traceparent),
            kind=SpanKind.CONSUMER,
            attributes={"messaging.message.id": entry_id},
        ) as span:
            outcome = await self._handle(entry_id, fields)
            span.set_attribute("results.outcome", outcome)
            return outcome

    async def _handle(self, entry_id: str, fields: Mapping[Any, Any]) -> Outcome:
        try:
            result = parse_entry(fields, self.catalogue)
        except PoisonError as exc:
            await self.dead_letter(entry_id, fields, exc.code, str(exc))
            return "dead"
        try:
            notes = await self._store_with_retries(result, entry_id)
        except Exception as exc:
            if is_transient(exc):  # stopping while PostgreSQL is away: stays pending
                return "deferred"
            await self.dead_letter(entry_id, fields, Reason.STORE_FAILED, repr(exc))
            return "dead"
        await self._ack(entry_id)
        if notes is None:
            self.metrics.duplicates.inc()
            log.info("duplicate result ignored", extra={"match_id": result.match_id})
            self.archiver.schedule(result.match_id)  # finishes an interrupted follow-up
            return "duplicate"
        self.metrics.processed.inc()
        log.info("result stored", extra={"match_id": result.match_id, "entry": entry_id})
        if self.publish is not None:
            try:
                await self.publish(notes)
            except Exception:  # live delivery is best effort: the rows are stored
                log.exception("live notification failed", extra={"match_id": result.match_id})
        self.archiver.schedule(result.match_id)  # the follow-up, in the background
        return "stored"

    # -- the loop --------------------------------------------------------------

    async def reclaim(self) -> int:
        """Take over entries another consumer left pending for too long."""
        handled = 0
        start = "0-0"
        while True:
            reply: Any = await self.redis.xautoclaim(
                keys.RESULTS_STREAM,
                keys.RESULTS_GROUP,
                self.settings.results_consumer,
                min_idle_time=self.settings.results_claim_idle_ms,
                start_id=start,
                count=self.settings.results_batch,
            )
            start, entries = reply[0], reply[1]
            for entry_id, fields in entries:
                if fields is None:  # deleted from the stream meanwhile
                    await self._ack(entry_id)
                    continue
                await self._handle_counted(_text(entry_id), fields)
                handled += 1
                if self.stopping.is_set():
                    return handled
            if _text(start) == "0-0":
                return handled

    async def _handle_counted(self, entry_id: str, fields: Mapping[Any, Any]) -> Outcome:
        info = await self.redis.xpending_range(
            keys.RESULTS_STREAM, keys.RESULTS_GROUP, min=entry_id, max=entry_id, count=1
        )
        delivered = int(info[0]["times_delivered"]) if info else 0
        if delivered > self.settings.results_max_deliveries:
            await self.dead_letter(
                entry_id, fields, Reason.TOO_MANY_DELIVERIES, f"delivered {delivered} times"
            )
            return "dead"
        return await self.handle(entry_id, fields)

    async def process_once(self, block_ms: int | None = None) -> int:
        """Reclaim stale entries when due, then read and handle one batch."""
        handled = 0
        now = time.monotonic()
        if now - self._last_reclaim >= self.settings.results_claim_idle_ms / 2000:
            self._last_reclaim = now
            handled += await self.reclaim()
        if now - self._last_sweep >= self.settings.results_archive_sweep_s:
            self._last_sweep = now
            self.archiver.schedule_sweep()
        reply: Any = await self.redis.xreadgroup(
            keys.RESULTS_GROUP,
            self.settings.results_consumer,
            {keys.RESULTS_STREAM: ">"},
            count=self.settings.results_batch,
            block=self.settings.results_block_ms if block_ms is None else block_ms,
        )
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                await self.handle(_text(entry_id), fields)
                handled += 1
                if self.stopping.is_set():
                    return handled
        await self.update_lag()
        await self.update_dead_letter()
        return handled

    async def update_lag(self) -> None:
        for group in await self.redis.xinfo_groups(keys.RESULTS_STREAM):
            if _text(group["name"]) == keys.RESULTS_GROUP:
                self.metrics.lag.set(float(group.get("lag") or 0))
                self.metrics.pending.set(float(group.get("pending") or 0))

    async def update_dead_letter(self) -> None:
        """The dead letter's length and the age of its oldest entry (0 when empty)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(keys.RESULTS_DEAD_LETTER)
            pipe.xrange(keys.RESULTS_DEAD_LETTER, count=1)
            length, oldest = await pipe.execute()
        self.metrics.dead_letter_entries.set(float(length))
        age = time.time() - entry_ms(_text(oldest[0][0])) / 1000 if oldest else 0.0
        self.metrics.dead_letter_oldest_age.set(max(age, 0.0))

    async def watch_dead_letter(self) -> None:
        """Refresh the dead-letter gauges every `results_dead_letter_refresh_s` until
        stopped, even while the loop waits on PostgreSQL or Redis."""
        while not self.stopping.is_set():
            try:
                await self.update_dead_letter()
            except (RedisError, OSError) as exc:  # Redis away: the loop reports and retries
                log.debug("dead-letter gauges not refreshed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.stopping.wait(), self.settings.results_dead_letter_refresh_s
                )

    async def _resume_own_pending(self) -> None:
        """The group (Redis may have come back without it) and our own entries left pending
        by a previous run under the same consumer name, or by the call Redis cut off."""
        await self.ensure_group()
        reply: Any = await self.redis.xreadgroup(
            keys.RESULTS_GROUP, self.settings.results_consumer, {keys.RESULTS_STREAM: "0"}
        )
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                await self._handle_counted(_text(entry_id), fields)
        self._resume = False

    async def _step(self) -> None:
        if self._resume:
            await self._resume_own_pending()
        await self.process_once()

    def _redis_down(self, exc: BaseException) -> bool:
        if self.stopping.is_set():
            return False
        if isinstance(exc, ResponseError):  # Redis answered: only a lost group is worth it
            return "NOGROUP" in str(exc)
        return isinstance(exc, RedisError | OSError)

    def _count_redis_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self._resume = True
        self.metrics.redis_retries.inc()
        log.warning(
            "redis call failed, retrying",
            extra={"attempt": state.attempt_number, "error": repr(exc)},
        )

    async def run(self) -> None:
        """Until stopped. Redis going away (a restart, a failover) is waited out with a
        backoff, never a crash: the entries stay in the stream and the group."""
        while not self.stopping.is_set():
            try:
                await call_with_retries(
                    self._step,
                    retry_on=self._redis_down,
                    initial_s=self.settings.results_backoff_initial_s,
                    max_s=self.settings.results_backoff_max_s,
                    on_retry=self._count_redis_retry,
                )
            except (RedisError, OSError):
                if not self.stopping.is_set():
                    raise
                return

    def stop(self) -> None:
        self.stopping.set()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
