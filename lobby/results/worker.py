"""The results worker: match results from the Redis stream into PostgreSQL, never lost.

Match servers XADD one entry per finished (or cancelled) match to
`keys.RESULTS_STREAM`, field `result` = `tradearena.contracts.results.MatchResult` JSON.
This worker reads them with a consumer group (`keys.RESULTS_GROUP`):

* **One transaction per match, idempotent by match id.** The transaction
  upserts `matches`, then inserts the marker row `match_results(match_id)`; if
  the marker already exists the transaction is rolled back, so a duplicate
  delivery (a republished result, a retried entry, two workers racing on a
  reclaimed entry) changes nothing. Then players, trades, ledger lines,
  OpenSkill ratings and one `match_result` notification per player.
* **XACK after commit**, never before: a worker that dies mid-way leaves the
  entry pending; another worker takes it over with XAUTOCLAIM once it has been
  idle `claim_idle_ms`.
* **Retries with backoff** (tenacity, exponential with jitter). Connection
  problems (PostgreSQL down, restarting, failing over) and serialization
  failures or deadlocks are *transient*: retried for as long as they last, the
  entry stays pending. Any other error is retried `max_attempts` times, then the
  entry is dead-lettered.
* **Dead letter** (`keys.RESULTS_DEAD_LETTER`, with the original entry id, a
  reason code and the raw payload), in the same MULTI as the XACK: poison
  messages at once (no `result` field, bad JSON, unknown `schema_version`,
  validation errors, unknown mode, player ids that are not user ids), entries
  delivered more than `max_deliveries` times, and repeated non-transient failures.
* **Metrics** (Prometheus): processed, duplicates, dead-lettered by reason,
  store retries, store latency, and the group's lag and pending count.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import Field, ValidationError
from redis.exceptions import ResponseError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from lobby.results.skill import Skill, rate
from tradearena.contracts import keys
from tradearena.contracts.results import RESULT_SCHEMA_VERSION, MatchResult
from tradearena.modes import Catalogue
from tradearena.settings import BaseAppSettings

log = logging.getLogger("lobby.results")

Outcome = Literal["stored", "duplicate", "dead", "deferred"]


def _default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ResultsWorkerSettings(BaseAppSettings):
    database_url: str = "postgresql://tradearena@127.0.0.1:5432/tradearena"
    results_consumer: str = Field(default_factory=_default_consumer)
    results_batch: int = Field(default=50, ge=1)
    results_block_ms: int = Field(default=1000, ge=1)
    results_claim_idle_ms: int = Field(default=60_000, ge=1)
    results_max_attempts: int = Field(default=5, ge=1)
    results_max_deliveries: int = Field(default=10, ge=1)
    results_backoff_initial_s: float = Field(default=0.1, gt=0)
    results_backoff_max_s: float = Field(default=5.0, gt=0)
    results_metrics_port: int = Field(default=9102, ge=0, le=65535)  # 0: no HTTP server
    results_metrics_host: str = "127.0.0.1"
    # Push stored notifications live through the lobby's Socket.IO Redis manager.
    socketio_redis: bool = False


class PoisonError(Exception):
    """The message can never be stored: dead-letter it at once."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Duplicate(Exception):  # noqa: N818 - control flow, rolls the transaction back
    pass


_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")  # connection, resources, operator intervention
_TRANSIENT_SQLSTATES = ("40001", "40P01")  # serialization failure, deadlock


def is_transient(exc: BaseException | None) -> bool:
    """Errors that say nothing about the message: retry for as long as they last."""
    if exc is None:
        return False
    if isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError | ConnectionError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state[:2] in _TRANSIENT_SQLSTATE_CLASSES or state in _TRANSIENT_SQLSTATES
    return False


def parse_entry(fields: Mapping[bytes | str, bytes | str], catalogue: Catalogue) -> MatchResult:
    """The MatchResult of one stream entry, or PoisonError with a stable code."""
    raw = fields.get(b"result", fields.get("result"))
    if raw is None:
        raise PoisonError("missing_result", "the entry has no `result` field")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonError("bad_json", f"`result` is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PoisonError("bad_json", "`result` is not a JSON object")
    if doc.get("schema_version") != RESULT_SCHEMA_VERSION:
        raise PoisonError(
            "unknown_schema_version",
            f"schema_version {doc.get('schema_version')!r} is not {RESULT_SCHEMA_VERSION}",
        )
    try:
        result = MatchResult.model_validate(doc)
    except ValidationError as exc:
        raise PoisonError("invalid_result", str(exc)[:2000]) from None
    if result.mode not in catalogue.modes:
        raise PoisonError("unknown_mode", f"unknown mode {result.mode!r}")
    for player in {*result.players, *(s.player for s in result.standings)}:
        try:
            uuid.UUID(player)
        except ValueError:
            raise PoisonError("invalid_player", f"player {player!r} is not a user id") from None
    return result


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class StoredNotification:
    user_id: str
    kind: str
    payload: dict[str, Any]
    id: int = 0
    created_at: datetime | None = None

    def event(self) -> dict[str, Any]:
        """The `/lobby` `notification` event, as the lobby's notify() sends it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "payload": self.payload,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "read_at": None,
        }


async def store_result(
    conn: asyncpg.Connection,
    result: MatchResult,
    stream_id: str,
    bankroll: Decimal,
) -> list[StoredNotification] | None:
    """Store one result in one transaction; None when it was already stored."""
    try:
        async with conn.transaction():
            return await _store(conn, result, stream_id, bankroll)
    except _Duplicate:
        return None


async def _store(
    conn: asyncpg.Connection, result: MatchResult, stream_id: str, bankroll: Decimal
) -> list[StoredNotification]:
    r = result
    await conn.execute(
        """
        INSERT INTO matches (id, mode, format, symbol, phase, reason, created_at, started_at,
                             ended_at, final_price, frozen_ms, log_entries, log_digest, ledger_digest)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        ON CONFLICT (id) DO UPDATE SET
            mode = EXCLUDED.mode, format = EXCLUDED.format, symbol = EXCLUDED.symbol,
            phase = EXCLUDED.phase, reason = EXCLUDED.reason, started_at = EXCLUDED.started_at,
            ended_at = EXCLUDED.ended_at, final_price = EXCLUDED.final_price,
            frozen_ms = EXCLUDED.frozen_ms, log_entries = EXCLUDED.log_entries,
            log_digest = EXCLUDED.log_digest, ledger_digest = EXCLUDED.ledger_digest
        """,
        r.match_id, r.mode, r.format, r.symbol, r.phase, r.reason, _ts(r.created_at),
        _ts(r.started_at), _ts(r.ended_at), r.final_price, r.frozen_ms, r.log_entries,
        r.log_digest, r.ledger_digest,
    )  # fmt: skip
    rated = r.phase == "finished" and len(r.standings) >= 2
    marker = await conn.fetchval(
        """
        INSERT INTO match_results (match_id, stream_id, schema_version, bankroll, rated)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (match_id) DO NOTHING RETURNING match_id
        """,
        r.match_id, stream_id, r.schema_version, bankroll, rated,
    )  # fmt: skip
    if marker is None:
        raise _Duplicate(r.match_id)

    standings = {s.player: s for s in r.standings}
    joined = _ts(r.created_at)
    rows = []
    for player in sorted({*r.players, *standings}):
        s = standings.get(player)
        if r.phase == "cancelled":
            status = "cancelled"
        else:
            status = s.status if s is not None else "abandoned"
        rows.append(
            (
                r.match_id, uuid.UUID(player), joined, status,
                s.rank if s else None, s.equity if s else None,
                s.realized_pnl if s else None, s.fees if s else None, s.trades if s else 0,
            )
        )  # fmt: skip
    await conn.executemany(
        """
        INSERT INTO match_players (match_id, user_id, joined_at, status, rank, equity,
                                   realized_pnl, fees, trades)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (match_id, user_id) DO UPDATE SET
            status = EXCLUDED.status, rank = EXCLUDED.rank, equity = EXCLUDED.equity,
            realized_pnl = EXCLUDED.realized_pnl, fees = EXCLUDED.fees, trades = EXCLUDED.trades
        """,
        rows,
    )
    if r.fills:
        await conn.executemany(
            """
            INSERT INTO trades (match_id, user_id, reason, side, qty, price, fee, realized_pnl,
                                loss_capped, ref, at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            """,
            [
                (r.match_id, uuid.UUID(f.player), f.reason, f.side, f.qty, f.price, f.fee,
                 f.realized_pnl, f.loss_capped, f.ref, _ts(f.at))
                for f in r.fills
            ],
        )  # fmt: skip
    if r.ledger:
        await conn.executemany(
            """
            INSERT INTO ledger_lines (match_id, seq, at, debit, credit, amount, kind, user_id, ref)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            [
                (r.match_id, ln.seq, _ts(ln.at), ln.debit, ln.credit, ln.amount, ln.kind,
                 _uuid_or_none(ln.player) if ln.player in standings or ln.player in r.players
                 else None, ln.ref)
                for ln in r.ledger
            ],
        )  # fmt: skip

    after: dict[str, Skill] = {}
    deltas: dict[str, float] = {}
    if rated:
        ids = sorted(standings)
        # Default rows first, then lock in id order: two workers never deadlock on ratings.
        await conn.executemany(
            """
            INSERT INTO ratings (user_id, mu, sigma, ordinal) VALUES ($1, $2, $3, $4)
            ON CONFLICT (user_id) DO NOTHING
            """,
            [(uuid.UUID(p), Skill().mu, Skill().sigma, Skill().ordinal) for p in ids],
        )
        current = await conn.fetch(
            "SELECT user_id, mu, sigma FROM ratings WHERE user_id = ANY($1::uuid[]) "
            "ORDER BY user_id FOR UPDATE",
            [uuid.UUID(p) for p in ids],
        )
        before = {str(row["user_id"]): Skill(row["mu"], row["sigma"]) for row in current}
        after = rate(before, {p: standings[p].rank for p in ids})
        deltas = {p: after[p].ordinal - before[p].ordinal for p in ids}
        await conn.executemany(
            """
            UPDATE ratings SET mu = $2, sigma = $3, ordinal = $4,
                   matches_played = matches_played + 1, updated_at = now()
            WHERE user_id = $1
            """,
            [(uuid.UUID(p), after[p].mu, after[p].sigma, after[p].ordinal) for p in ids],
        )
        await conn.executemany(
            "UPDATE match_players SET rating_delta = $3 WHERE match_id = $1 AND user_id = $2",
            [(r.match_id, uuid.UUID(p), deltas[p]) for p in ids],
        )

    notes = []
    for row in rows:
        player = str(row[1])
        s = standings.get(player)
        payload: dict[str, Any] = {
            "match_id": r.match_id,
            "mode": r.mode,
            "format": r.format,
            "phase": r.phase,
            "reason": r.reason,
            "players": len(rows),
            "rank": s.rank if s else None,
            "equity": str(s.equity) if s else None,
            "pnl": str(s.equity - bankroll) if s else None,
            "status": row[3],
        }
        if player in after:
            payload["rating"] = {
                "mu": after[player].mu,
                "sigma": after[player].sigma,
                "ordinal": after[player].ordinal,
                "delta": deltas[player],
            }
        notes.append(StoredNotification(player, "match_result", payload))
    stored = await conn.fetch(
        """
        INSERT INTO notifications (user_id, kind, payload)
        SELECT t.u, 'match_result', t.p::jsonb
        FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS t(u, p, i) ORDER BY t.i
        RETURNING id, user_id, created_at
        """,
        [uuid.UUID(n.user_id) for n in notes],
        [json.dumps(n.payload) for n in notes],
    )
    by_user = {str(row["user_id"]): row for row in stored}
    return [
        StoredNotification(
            n.user_id, n.kind, n.payload, by_user[n.user_id]["id"], by_user[n.user_id]["created_at"]
        )
        for n in notes
    ]


class ResultsMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.processed = Counter(
            "tradearena_results_processed", "Results stored in PostgreSQL", registry=r
        )
        self.duplicates = Counter(
            "tradearena_results_duplicates", "Deliveries of a result already stored", registry=r
        )
        self.dead_lettered = Counter(
            "tradearena_results_dead_lettered", "Entries moved to the dead letter", ["reason"],
            registry=r,
        )  # fmt: skip
        self.retries = Counter(
            "tradearena_results_store_retries", "Failed store attempts retried", ["kind"],
            registry=r,
        )  # fmt: skip
        self.store_seconds = Histogram(
            "tradearena_results_store_seconds", "Time to store one result", registry=r
        )
        self.lag = Gauge(
            "tradearena_results_lag", "Stream entries not yet delivered to the group", registry=r
        )
        self.pending = Gauge(
            "tradearena_results_pending", "Entries delivered but not acknowledged", registry=r
        )


Publish = Callable[[Sequence[StoredNotification]], Awaitable[None]]


class ResultsWorker:
    def __init__(
        self,
        redis: aioredis.Redis,
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
        self, entry_id: str, fields: Mapping[Any, Any], reason: str, error: str
    ) -> None:
        raw = fields.get(b"result", fields.get("result", b""))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                keys.RESULTS_DEAD_LETTER,
                {"id": entry_id, "reason": reason, "error": error[:2000], "result": raw},
            )
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
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: not isinstance(e, PoisonError)),
            stop=self._stop_retrying,
            wait=wait_exponential_jitter(
                multiplier=self.settings.results_backoff_initial_s,
                max=self.settings.results_backoff_max_s,
                jitter=self.settings.results_backoff_initial_s,
            ),
            before_sleep=self._count_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                pool = await self.pool()
                async with pool.acquire() as conn:
                    t0 = time.perf_counter()
                    notes = await store_result(conn, result, entry_id, bankroll)
                    self.metrics.store_seconds.observe(time.perf_counter() - t0)
                    return notes
        raise AssertionError("unreachable")  # pragma: no cover

    async def handle(self, entry_id: str, fields: Mapping[Any, Any]) -> Outcome:
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
            await self.dead_letter(entry_id, fields, "store_failed", repr(exc))
            return "dead"
        await self._ack(entry_id)
        if notes is None:
            self.metrics.duplicates.inc()
            log.info("duplicate result ignored", extra={"match_id": result.match_id})
            return "duplicate"
        self.metrics.processed.inc()
        log.info("result stored", extra={"match_id": result.match_id, "entry": entry_id})
        if self.publish is not None:
            try:
                await self.publish(notes)
            except Exception:  # live delivery is best effort: the rows are stored
                log.exception("live notification failed", extra={"match_id": result.match_id})
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
                entry_id, fields, "too_many_deliveries", f"delivered {delivered} times"
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
        return handled

    async def update_lag(self) -> None:
        for group in await self.redis.xinfo_groups(keys.RESULTS_STREAM):
            if _text(group["name"]) == keys.RESULTS_GROUP:
                self.metrics.lag.set(float(group.get("lag") or 0))
                self.metrics.pending.set(float(group.get("pending") or 0))

    async def run(self) -> None:
        await self.ensure_group()
        # Our own entries left pending by a previous run under the same consumer name.
        reply: Any = await self.redis.xreadgroup(
            keys.RESULTS_GROUP, self.settings.results_consumer, {keys.RESULTS_STREAM: "0"}
        )
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                await self._handle_counted(_text(entry_id), fields)
        while not self.stopping.is_set():
            await self.process_once()

    def stop(self) -> None:
        self.stopping.set()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# ---- the `tradearena results-worker` process -----------------------------------------


def socketio_publisher(redis_url: str) -> Publish:
    """Live `notification` events to the players' `/lobby` rooms on every lobby replica,
    through python-socketio's Redis manager (write-only: this process serves no client)."""
    import socketio

    manager = socketio.AsyncRedisManager(redis_url, channel=keys.SOCKETIO_CHANNEL, write_only=True)

    async def publish(notes: Sequence[StoredNotification]) -> None:
        for n in notes:
            await manager.emit(
                "notification", n.event(), room=f"user:{n.user_id}", namespace="/lobby"
            )

    return publish


async def _probe_app(worker: ResultsWorker) -> Any:
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        checks = {"redis": "ok", "postgres": "ok"}
        try:
            await worker.redis.ping()
        except Exception as exc:
            checks["redis"] = repr(exc)
        try:
            pool = await worker.pool()
            async with pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")
        except Exception as exc:
            checks["postgres"] = repr(exc)
        ok = all(v == "ok" for v in checks.values())
        return web.json_response(
            {"status": "ready" if ok else "not_ready", "checks": checks}, status=200 if ok else 503
        )

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(worker.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(settings: ResultsWorkerSettings, catalogue: Catalogue) -> int:
    """Run until SIGTERM/SIGINT: finish the entry in hand, leave the rest pending."""
    import signal

    from aiohttp import web

    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    publish = socketio_publisher(settings.redis_url) if settings.socketio_redis else None
    worker = ResultsWorker(client, catalogue, settings, publish=publish)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    runner = None
    if settings.results_metrics_port:
        runner = web.AppRunner(await _probe_app(worker))
        await runner.setup()
        await web.TCPSite(
            runner, settings.results_metrics_host, settings.results_metrics_port
        ).start()
    log.info("results worker started", extra={"consumer": settings.results_consumer})
    try:
        await worker.run()
    finally:
        if runner is not None:
            await runner.cleanup()
        await worker.close()
        await client.aclose()
    log.info("results worker stopped")
    return 0
