"""One symbol's relay: elect, and while leading, pump the upstream into the stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span
from redis.exceptions import RedisError

from matchserver.feed.binance import BinanceConfig, BinanceSource
from matchserver.feed.sources import (
    Clock,
    FeedTick,
    PriceSource,
    ReplaySource,
    SourceStats,
    SyntheticSource,
    wall_ms,
)
from matchserver.relay.backfill import replay_history, synthetic_history
from matchserver.relay.candles import CandleState, advance, aggregate
from matchserver.relay.leadership import Change, Leadership
from matchserver.relay.lease import Acquired, FeedLease, Offered, Published
from matchserver.relay.metrics import RelayMetrics
from matchserver.relay.settings import RelaySettings
from tradearena import tracing
from tradearena.contracts.candles import Candle, CandleInterval
from tradearena.retry import RestartBudget

log = logging.getLogger(__name__)
T = TypeVar("T")
_tracer = tracing.tracer("matchserver.relay")


SourceFactory = Callable[[str, FeedTick | None], PriceSource]
# The past a source would have published before `now` (symbol, now): see `backfill.py`.
HistoryFactory = Callable[[str, int], list[FeedTick]]
_CHUNK = 500  # entries per fenced call of a backfill


def history_factory(settings: RelaySettings) -> HistoryFactory | None:
    """The backfill of the configured source, or None (off, or Binance: no past to give)."""
    span = settings.relay_backfill_ms
    if span <= 0:
        return None
    if settings.relay_source == "synthetic":
        return lambda symbol, now: synthetic_history(
            symbol,
            seed=settings.relay_synthetic_seed,
            interval_ms=settings.relay_synthetic_interval_ms,
            start_price=settings.relay_synthetic_start_price,
            span_ms=span,
            now_ms=now,
        )
    if settings.relay_source == "replay":
        return lambda symbol, now: replay_history(
            symbol,
            settings.relay_replay_files,
            speed=settings.relay_replay_speed,
            span_ms=span,
            now_ms=now,
        )
    return None


def source_factory(settings: RelaySettings, clock: Clock = wall_ms) -> SourceFactory:
    """Builds the upstream of a symbol for a new leader, resuming after the stream's last tick."""

    def make(symbol: str, resume: FeedTick | None) -> PriceSource:
        if settings.relay_source == "synthetic":
            return SyntheticSource(
                symbol,
                seed=settings.relay_synthetic_seed,
                interval_ms=settings.relay_synthetic_interval_ms,
                start_price=settings.relay_synthetic_start_price,
                resume_from=resume if resume is not None and resume.source == "synthetic" else None,
                clock=clock,
            )
        if settings.relay_source == "replay":
            after = resume.source_ms if resume is not None and resume.source == "replay" else None
            return ReplaySource(
                symbol,
                settings.relay_replay_files,
                speed=settings.relay_replay_speed,
                resume_after_source_ms=after,
                clock=clock,
            )
        config = BinanceConfig(
            base_url=settings.relay_binance_url,
            stale_after_ms=settings.relay_binance_stale_after_ms,
            max_connection_age_ms=settings.relay_binance_max_connection_age_ms,
        )
        return BinanceSource(symbol, config, clock=clock)

    return make


# How often a stopping leader checks whether a standby has taken its offered lease.
HANDOVER_POLL_MS = 50


class _Deposed(Exception):  # noqa: N818 - control flow
    pass


@dataclass
class SymbolRelay:
    """Elects, and while leading, pumps one symbol's upstream into its stream."""

    symbol: str
    lease: FeedLease
    leadership: Leadership
    make_source: SourceFactory
    metrics: RelayMetrics
    replica: str
    clock: Clock = wall_ms
    restart_initial_ms: int = 500
    restart_max_ms: int = 30_000
    history: HistoryFactory | None = None
    backfill_1s_ms: int = 3_600_000
    redis_ok_at: int | None = None
    _candles: CandleState = field(default_factory=CandleState)
    _last_close: dict[CandleInterval, int] = field(default_factory=dict)
    _publisher: asyncio.Task[None] | None = None
    _source_stats: SourceStats | None = None
    _seen_reconnects: int = 0
    _seen_malformed: int = 0
    _stream_last_ms: int | None = None
    _last_tick_ms: int | None = None  # the last tick from upstream, kept across restarts
    _started_ms: int | None = None
    _exhausted: bool = False
    _restarts: RestartBudget | None = None
    _restart_at: int = 0
    _failing: bool = False  # five failures within a minute and no tick since
    _term: Span | None = None  # `relay.leadership`: this replica's term as leader (traced)

    def __post_init__(self) -> None:
        m, symbol = self.metrics, self.symbol
        for metric in (
            m.published,
            m.duplicates,
            m.fenced,
            m.publish_errors,
            m.reconnects,
            m.malformed,
            m.staleness,
            m.publisher_restarts,
        ):
            metric.labels(symbol)  # every series exists (at 0) from the start
        m.leader.labels(symbol).set(0)
        for interval in CandleInterval:
            m.candles_written.labels(symbol, interval.value)

    def status(self) -> dict[str, Any]:
        return {
            "leader": self.leadership.is_leader(self.clock()),
            "staleness_s": self._staleness(),
            "publisher": "failing" if self._failing else "ok",
        }

    @property
    def failing(self) -> bool:
        """The publisher failed five times within a minute and has published nothing since."""
        return self._failing

    async def run(self, stop: asyncio.Event) -> None:
        self._started_ms = self.clock()
        self._restarts = RestartBudget(self.restart_initial_ms / 1000, self.restart_max_ms / 1000)
        try:
            while not stop.is_set():
                await self._check()
                self._refresh_metrics()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.leadership.check_interval_ms() / 1000)
            await self._hand_over()
        finally:
            await self._stop_publishing()
            if self.leadership.leader:
                with contextlib.suppress(RedisError, OSError):
                    await self.lease.release()
                    log.info("lease released", extra={"symbol": self.symbol})
            self.leadership.leader = False
            self.metrics.leader.labels(self.symbol).set(0)
            self._end_term("stopped")

    async def _hand_over(self) -> None:
        """A stopping leader keeps publishing until a standby takes its lease over (at the
        standby's next acquire attempt), so a rolling upgrade leaves no pause in the
        stream; without a standby, or if none takes it within one lease TTL, the lease is
        released as before (`run`'s `finally`)."""
        if not self.leadership.leader or self._publisher is None:
            return
        try:
            offered = await self.lease.offer()
        except (RedisError, OSError) as exc:
            log.warning("lease offer failed", extra={"symbol": self.symbol, "error": repr(exc)})
            return
        if offered is not Offered.OFFERED:
            self.metrics.handovers.labels(self.symbol, "no_standby").inc()
            return
        outcome = "timeout"
        deadline = self.clock() + self.lease.ttl_ms
        while self.clock() < deadline:
            await asyncio.sleep(HANDOVER_POLL_MS / 1000)  # the standby announces nothing
            try:
                held = await self.lease.renew()
            except (RedisError, OSError):
                break
            if not held:
                outcome = "taken"
                self._apply(self.leadership.lost())
                break
        self.metrics.handovers.labels(self.symbol, outcome).inc()
        log.info("lease handover", extra={"symbol": self.symbol, "outcome": outcome})

    async def _check(self) -> None:
        task = self._publisher
        if task is not None and task.done():
            self._publisher = None
            error = None if task.cancelled() else task.exception()
            if isinstance(error, _Deposed):
                self._apply(self.leadership.lost())
            elif error is not None:
                self._publisher_failed(error)
            elif not task.cancelled():
                self._exhausted = True  # a replay that reached its end: nothing to restart
        sent = self.clock()
        try:
            if self.leadership.leader:
                held = await self.lease.renew()
            else:
                acquired = await self.lease.acquire()
                held = acquired is not Acquired.HELD_BY_ANOTHER
                if acquired is Acquired.TAKEN_OVER:
                    log.info(
                        "lease taken over from a stopping leader", extra={"symbol": self.symbol}
                    )
                last = await self.lease.last_tick()
                self._stream_last_ms = None if last is None else last.event_ms
            self.redis_ok_at = self.clock()
            change = self.leadership.on_result(held, sent)
        except (RedisError, OSError) as exc:
            log.warning("lease call failed", extra={"symbol": self.symbol, "error": repr(exc)})
            change = self.leadership.on_error(self.clock())
        self._apply(change)
        if (
            self.leadership.leader
            and self._publisher is None
            and not self._exhausted
            and self.clock() >= self._restart_at
        ):
            # The publisher logs in the leadership term's trace.
            with trace.use_span(self._term or trace.INVALID_SPAN, end_on_exit=False):
                self._publisher = asyncio.create_task(
                    self._publish(), name=f"publish-{self.symbol}"
                )

    def _publisher_failed(self, error: BaseException) -> None:
        """Restart later, not at the next check: a source that fails at once (a file broken
        while it was read) would otherwise be restarted, with a traceback, several times a
        second. Counted, and unready after five failures within a minute."""
        assert self._restarts is not None
        now = self.clock()
        delay_s = self._restarts.failed(now / 1000)
        failures = self._restarts.recent(now / 1000)
        self._restart_at = now + int(delay_s * 1000)
        if self._restarts.spent(now / 1000):
            self._failing = True
        self.metrics.publisher_restarts.labels(self.symbol).inc()
        log.error(
            "publisher failed",
            exc_info=error if failures == 1 else None,  # one traceback, then one line each
            extra={
                "symbol": self.symbol,
                "error": str(error) or repr(error),
                "failures_in_window": failures,
                "restart_in_s": delay_s,
            },
        )

    def _apply(self, change: Change) -> None:
        if change is Change.NONE:
            return
        self._exhausted = False
        self.metrics.leader_changes.labels(self.symbol, change.value).inc()
        self.metrics.leader.labels(self.symbol).set(1 if change is Change.ELECTED else 0)
        if change is Change.ELECTED:
            self._end_term("superseded")
            self._term = _tracer.start_span(
                "relay.leadership",
                context=tracing.ROOT,
                attributes={"feed.symbol": self.symbol, "relay.replica": self.replica},
            )
        with trace.use_span(self._term or trace.INVALID_SPAN, end_on_exit=False):
            log.info(
                "leader " + change.value,
                extra={"symbol": self.symbol, "relay": self.replica},
            )
        if change is Change.DEPOSED:
            self._end_term("deposed")
            if self._publisher is not None:
                self._publisher.cancel()

    def _end_term(self, how: str) -> None:
        term, self._term = self._term, None
        if term is not None:
            term.set_attribute("relay.term_end", how)
            term.end()

    async def _stop_publishing(self) -> None:
        task, self._publisher = self._publisher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _publish(self) -> None:
        resume = await self.lease.last_tick()
        now = self.clock()
        cold = resume is None or resume.event_ms < now - self.lease.history_ms
        history = await self._backfill(now) if self.history is not None and cold else None
        if history is None:
            await self._rebuild()
        resume = history or resume
        source = self.make_source(self.symbol, resume)
        self._source_stats, self._seen_reconnects, self._seen_malformed = source.stats, 0, 0
        log.info(
            "upstream starting",
            extra={"symbol": self.symbol, "source": source.name, "resume": _id(resume)},
        )
        async with contextlib.aclosing(source.ticks()) as ticks:
            resync = False
            async for tick in ticks:
                self._last_tick_ms = self.clock()
                if resync:  # a failed publish may have written its tick after all
                    with contextlib.suppress(RedisError, OSError):
                        await self._rebuild()
                        resync = False
                candles, closed = advance(self._candles, tick)
                try:
                    outcome, added = await self.lease.publish_closing(
                        tick, self.replica, self.clock(), closed
                    )
                except (RedisError, OSError) as exc:
                    self.metrics.publish_errors.labels(self.symbol).inc()
                    log.warning("publish failed", extra={"symbol": self.symbol, "error": repr(exc)})
                    resync = True
                    continue
                if outcome is Published.OK:
                    self._candles = candles
                    self._wrote(closed, added)
                    self.metrics.published.labels(self.symbol).inc()
                    self._failing = False
                elif outcome is Published.DUPLICATE:
                    self.metrics.duplicates.labels(self.symbol).inc()
                else:
                    self.metrics.fenced.labels(self.symbol).inc()
                    raise _Deposed
        log.warning("upstream ended", extra={"symbol": self.symbol})

    async def _rebuild(self) -> None:
        """A new leader's open candles, from the stream's ticks since the last stored
        1 m candle closed (the stream keeps ~15 minutes): the next candles it writes
        continue the old leader's, without a duplicate (idempotent by open time) or a
        hole. Candles those ticks closed that are missing (written by no one) are added."""
        last = await self.lease.last_candle(CandleInterval.M1)
        start = 0 if last is None else last.close_ms(CandleInterval.M1)
        ticks = await self.lease.ticks_since(start)
        self._candles, closed = aggregate(ticks)
        for chunk in _chunks(closed):
            await self._write_history([], chunk)

    async def _backfill(self, now: int) -> FeedTick | None:
        """Write the source's past (`backfill.py`) as candles, then the last `history_ms`
        of it as ticks; the live source resumes after the last tick. Written in chunks,
        candles first: a leader deposed half-way leaves a cold stream, and the next one
        backfills again, skipping what is already there."""
        assert self.history is not None
        ticks = await asyncio.to_thread(self.history, self.symbol, now)
        if not ticks:
            return None
        self._candles, closed = aggregate(ticks)
        s1_from = now - self.backfill_1s_ms
        closed = [(i, c) for i, c in closed if i is CandleInterval.M1 or c.t >= s1_from]
        recent = [t for t in ticks if t.event_ms >= now - self.lease.history_ms]
        for chunk in _chunks(closed):
            await self._write_history([], chunk)
        for part in _chunks(recent):
            await self._write_history(part, [])
        log.info(
            "backfilled",
            extra={
                "symbol": self.symbol,
                "from_ms": ticks[0].event_ms,
                "candles": len(closed),
                "ticks": len(recent),
            },
        )
        return ticks[-1]

    async def _write_history(
        self, ticks: Sequence[FeedTick], closed: Sequence[tuple[CandleInterval, Candle]]
    ) -> None:
        outcome, _, added = await self.lease.write_history(
            ticks, self.replica, self.clock(), closed
        )
        if outcome is Published.NOT_LEADER:
            self.metrics.fenced.labels(self.symbol).inc()
            raise _Deposed
        self._wrote(closed, added)

    def _wrote(
        self, closed: Sequence[tuple[CandleInterval, Candle]], added: Mapping[CandleInterval, int]
    ) -> None:
        for interval, count in added.items():
            if count:
                self.metrics.candles_written.labels(self.symbol, interval.value).inc(count)
        for interval, candle in closed:
            close = candle.close_ms(interval)
            self._last_close[interval] = max(self._last_close.get(interval, close), close)

    def _staleness(self) -> float:
        """Seconds since the last real tick: from upstream while leading (kept across
        publisher restarts, so a source that fails before its first tick does not read
        fresh), or the stream's last tick; since the start when there was never one."""
        now = self.clock()
        if self.leadership.leader:
            known = [t for t in (self._last_tick_ms, self._stream_last_ms) if t is not None]
        else:
            known = [self._stream_last_ms] if self._stream_last_ms is not None else []
        last = max(known) if known else self._started_ms
        return 0.0 if last is None else max(0, now - last) / 1000

    def _refresh_metrics(self) -> None:
        m, s = self.metrics, self._source_stats
        m.staleness.labels(self.symbol).set(self._staleness())
        now = self.clock()
        for interval, close in self._last_close.items():
            m.candle_age.labels(self.symbol, interval.value).set(max(0, now - close) / 1000)
        if s is not None:
            m.reconnects.labels(self.symbol).inc(s.reconnects - self._seen_reconnects)
            m.malformed.labels(self.symbol).inc(s.malformed - self._seen_malformed)
            self._seen_reconnects, self._seen_malformed = s.reconnects, s.malformed


def _chunks(items: Sequence[T]) -> list[Sequence[T]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _id(tick: FeedTick | None) -> str | None:
    return None if tick is None else tick.stream_id
