"""Runs the engine in real time: clock, feed, durable log, event routing, lifecycle.

Every engine call happens under one lock and its new log entries reach Redis
before any event or acknowledgement leaves the process, so what a client was
told is always recoverable by replaying the log.

Durability: with `redis_wait_replicas` set, a commit waits (holding the match's lock:
the match pauses) until that many replicas have its entries (matchserver.durability);
a commit not replicated in time faults the match (`redis_not_durable`), and a log in
Redis that is not the one this process wrote (entries lost in a failover while nothing
waited) faults it too (`redis_log_diverged`): the runner never appends to a log blindly,
nor builds on state that Redis no longer has.

Isolation: an exception escaping the runner's own loops or an engine call, and an
engine call that takes more CPU than `engine_budget_ms`, are a *fault* of this
match alone (`report_fault`); whoever hosts the runner settles it (`settle_now`:
cancelled, the fault as reason) while other matches in the process carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from matchserver import heap
from matchserver.durability import REDIS_LOG_DIVERGED, REDIS_NOT_DURABLE, NotDurableError
from matchserver.engine import snapshot
from matchserver.engine.codes import Code
from matchserver.engine.events import Ack, Event, reject
from matchserver.engine.log import PRICE, LogEntry, dumps
from matchserver.engine.match import Match, replay_entries
from matchserver.feed.sources import FeedTick
from matchserver.metrics import MatchMetrics
from matchserver.store import LogDivergedError, MatchStore
from tradearena.contracts.phases import GamePhase, ServerPhase
from tradearena.contracts.results import MatchResult

log = logging.getLogger(__name__)

T = TypeVar("T")

SERVER_ERROR = "server_error"  # cancel reason of a match whose handling raised
ENGINE_OVERRUN = "engine_overrun"  # ... whose engine call overran its CPU budget


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Emitter(Protocol):
    async def broadcast(self, kind: str, data: dict[str, Any]) -> None: ...

    async def to_player(self, player: str, kind: str, data: dict[str, Any]) -> None: ...


@dataclass
class RunnerConfig:
    format: str
    symbol: str
    join_timeout_ms: int
    clock_interval_ms: int
    leaderboard_interval_ms: int
    leaderboard_size: int
    snapshot_every_entries: int = 5000
    freeze_heap: bool = False  # the server process sets it: see matchserver.heap
    engine_budget_ms: int = 0  # CPU per engine call before the match is faulted; 0: none


class MatchRunner:
    def __init__(
        self,
        match: Match,
        store: MatchStore,
        emitter: Emitter,
        metrics: MatchMetrics,
        config: RunnerConfig,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.match = match
        self.store = store
        self.emitter = emitter
        self.metrics = metrics
        self.config = config
        self.clock = clock
        self._lock = asyncio.Lock()
        self._persisted = len(match.log)
        self._log_ours = True  # False once the log in Redis is found not to be ours
        self._snapshot_at = len(match.log)
        self.ready = asyncio.Event()
        self.finished = asyncio.Event()
        self.last_feed_ms: int | None = None
        self._ready_at: int | None = None
        self._stop_request: tuple[bool, str] | None = None
        self.fault: str | None = None  # its reason code (SERVER_ERROR, ...) once faulted
        self.faulted = asyncio.Event()
        self.loops: list[asyncio.Task[None]] = []
        # Hooks for the host: READY written for a new match; players connected changed.
        self.on_ready: Callable[[], None] | None = None
        self.on_presence: Callable[[], None] | None = None
        # The match's span (W3C traceparent), set by the host when traced: the parent of
        # the players' connection spans, and sent on with the result.
        self.traceparent: str | None = None

    # ----------------------------------------------------------------- building
    @classmethod
    async def open(
        cls,
        fresh: Match,
        store: MatchStore,
        emitter: Emitter,
        metrics: MatchMetrics,
        config: RunnerConfig,
        clock: Callable[[], int] = wall_ms,
    ) -> MatchRunner:
        """A new match, or the same match restored from its log after a restart."""
        header = await store.claim_header(fresh.header())
        entries = await store.load_log()
        if entries or header != fresh.header():
            started = time.perf_counter()
            match, from_snapshot = await _rebuild(store, header, entries)
            runner = cls(match, store, emitter, metrics, config, clock)
            log.info(
                "match restored",
                extra={
                    "match_id": match.match_id,
                    "entries": len(entries),
                    "phase": str(match.phase),
                    "from_snapshot_at": from_snapshot,
                    "seconds": round(time.perf_counter() - started, 3),
                },
            )
            if match.phase is GamePhase.LIVE:
                async with runner._lock:
                    await runner._commit(runner._engine(match.restarted, clock()))
        else:
            runner = cls(fresh, store, emitter, metrics, config, clock)
        runner._freeze_heap()  # modules, schemas and the match so far
        return runner

    def _freeze_heap(self) -> None:
        if self.config.freeze_heap:
            self.metrics.gc_frozen.set(heap.freeze())

    # ----------------------------------------------------------------- commits
    async def _commit(self, events: list[Event]) -> None:
        """Persist new log entries, then hand out the events. Caller holds the lock."""
        new = self.match.log[self._persisted :] if self._log_ours else []
        if new:
            started = time.perf_counter()
            try:
                self._persisted = await self.store.append(new, self._persisted)
            except NotDurableError as exc:
                self._not_durable(exc, len(new))
                raise
            except LogDivergedError as exc:
                # Never written to again: the settling (stop, match_end) goes out from
                # memory, and the log in Redis stays as it was found.
                self._log_ours = False
                self.report_fault(REDIS_LOG_DIVERGED, exc)
                raise
            self.metrics.log_append.observe(time.perf_counter() - started)
            if self._persisted - self._snapshot_at >= self.config.snapshot_every_entries:
                self._snapshot_at = self._persisted
                await self.store.save_snapshot(dumps(snapshot.take(self.match)))
                self._freeze_heap()
        for event in events:
            await self._route(event)

    async def _route(self, event: Event) -> None:
        if event.kind == "tick":
            lag = max(0, self.clock() - int(event.data["at"])) / 1000
            await self.emitter.broadcast("tick", event.data)
            self.metrics.tick_to_emit.observe(lag)
            return
        if event.kind == "match_end":
            await self.emitter.broadcast("match_end", _public_result(event.data))
            return
        if event.to is None:
            await self.emitter.broadcast(event.kind, event.data)
        else:
            await self.emitter.to_player(event.to, event.kind, event.data)

    # ----------------------------------------------------------------- inputs
    async def submit(self, player: str, payload: Any) -> Ack:
        async with self._lock:
            if self.fault is not None:  # settling: nothing more is taken (or acked)
                return reject(Code.MATCH_NOT_LIVE, "the match failed")
            ack, events = self._engine(self.match.submit, player, payload, self.clock())
            await self._commit(events)
        self.metrics.actions.labels(str(ack.code)).inc()
        return ack

    async def connect(self, player: str) -> Ack:
        async with self._lock:
            before = self.match.players.get(player)
            was_seen = before is not None and before.ever_connected and not before.connected
            ack, events = self._engine(self.match.connect, player, self.clock())
            await self._commit(events)
        if ack.ok:
            if was_seen:
                self.metrics.reconnects.inc()
            self._update_connected()
        return ack

    async def start_if_everyone_is_here(self) -> None:
        if self.match.phase is GamePhase.WAITING and all(
            p.connected for p in self.match.players.values()
        ):
            await self.start()

    async def disconnect(self, player: str) -> None:
        async with self._lock:
            await self._commit(self._engine(self.match.disconnect, player, self.clock()))
        self._update_connected()

    def _update_connected(self) -> None:
        if self.on_presence is not None:
            self.on_presence()

    def connected(self) -> int:
        return sum(p.connected for p in self.match.players.values())

    def last_tick_key(self) -> tuple[int, int] | None:
        """Identity of the newest tick already in the log (a restart skips up to it)."""
        for entry in reversed(self.match.log):
            if entry.kind == PRICE and entry.data and "ref" in entry.data:
                event_ms, _, seq = str(entry.data["ref"]).partition("-")
                return int(event_ms), int(seq or 0)
        return None

    async def take_history(self, ticks: Sequence[FeedTick]) -> None:
        """The feed's history in one commit (one log write, not one per tick): no client
        is connected yet, so nothing waits on each tick's events."""
        seen = self.last_tick_key()
        fresh = [t for t in ticks if seen is None or t.key() > seen]
        if not fresh:
            return
        async with self._lock:
            events: list[Event] = []
            for tick in fresh:
                if self.match.phase.over:
                    break
                self.last_feed_ms = tick.recv_ms
                events.extend(
                    self._engine(self.match.feed, tick.price, tick.recv_ms, tick.stream_id)
                )
            await self._commit(events)
        if not self.ready.is_set() and self.match.official is not None:
            await self._become_ready()

    async def on_price(self, price: Decimal, recv_ms: int, ref: str | None = None) -> None:
        self.last_feed_ms = recv_ms
        async with self._lock:
            if self.match.phase.over:
                return
            await self._commit(self._engine(self.match.feed, price, recv_ms, ref))
        if not self.ready.is_set() and self.match.official is not None:
            await self._become_ready()

    async def start(self) -> None:
        async with self._lock:
            if self.match.phase is not GamePhase.WAITING or self.match.official is None:
                return
            await self._commit(self._engine(self.match.start, self.clock()))
        await self.store.set_status(ServerPhase.LIVE, started_at=self.match.started_at or 0)
        log.info(
            "match live",
            extra={"match_id": self.match.match_id, "players": len(self.match.players)},
        )

    def request_stop(self, *, cancelled: bool, reason: str) -> None:
        """From a signal handler: the clock loop settles the match on its next turn."""
        self._stop_request = (cancelled, reason)

    # ----------------------------------------------------------------- isolation
    def _engine(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One engine call, its CPU time checked against the budget (the call completes
        either way and its entries are committed: the log stays the truth)."""
        started = time.thread_time()
        result = call(*args, **kwargs)
        spent_ms = (time.thread_time() - started) * 1000
        budget = self.config.engine_budget_ms
        if budget and spent_ms > budget:
            self.report_fault(
                ENGINE_OVERRUN, f"{getattr(call, '__name__', 'engine call')} took {spent_ms:.0f} ms"
            )
        return result

    def _not_durable(self, exc: NotDurableError, entries: int) -> None:
        """A commit not replicated in time: nothing of it was handed out; the match
        faults and settles without waiting again (on whatever Redis holds)."""
        if exc.landed:
            self._persisted += entries  # on the primary, if not (yet) on a replica
        self.store.wait = False
        log.error(
            "commit not replicated in time",
            extra={
                "match_id": self.match.match_id,
                "replicas_wanted": exc.wanted,
                "replicas_seen": exc.seen,
                "waited_s": round(exc.waited_s, 3),
                "last_error": exc.error,
            },
        )
        self.report_fault(REDIS_NOT_DURABLE, exc)

    def report_fault(self, reason: str, detail: str | BaseException) -> None:
        """This match cannot be trusted to go on: its host settles it (the first fault wins)."""
        if self.fault is not None:
            return
        self.fault = reason
        log.error(
            "match faulted",
            exc_info=detail if isinstance(detail, BaseException) else None,
            extra={"match_id": self.match.match_id, "fault": reason, "detail": str(detail)},
        )
        self.faulted.set()

    async def guarded(self, work: Coroutine[Any, Any, None]) -> None:
        """Run one of the match's loops; an exception escaping it faults this match only."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any bug in one match must not reach the others
            self.report_fault(SERVER_ERROR, exc)

    def start_loops(
        self, ticks: AsyncIterator[FeedTick] | None, history: Sequence[FeedTick] = ()
    ) -> None:
        """The clock, and the feed unless the match is over already (a restart after its
        end only makes sure the result went out). The feed's `history` goes in before the
        clock first runs: the clock moves the engine's time to now, and a history tick
        taken after that would count as received now, holding every official price back
        by a whole delay window (the feed would look stale meanwhile)."""
        mid = self.match.match_id
        if ticks is None or self.match.phase.over:
            self._start_clock()
            return

        async def feed() -> None:
            await self.take_history(history)
            self._start_clock()
            await self.run_feed(ticks)

        self.loops.append(asyncio.create_task(self.guarded(feed()), name=f"feed:{mid}"))

    def _start_clock(self) -> None:
        mid = self.match.match_id
        self.loops.append(asyncio.create_task(self.guarded(self.run_clock()), name=f"clock:{mid}"))

    async def stop_loops(self) -> None:
        for task in self.loops:
            await cancel_quietly(task)

    async def settle_now(self, *, cancelled: bool, reason: str) -> None:
        """End the match at once without its loops (a fault): stop it in the engine under
        the lock (so no loop is mid-commit when it is cancelled), then publish."""
        async with self._lock:
            for task in self.loops:
                task.cancel()
            if not self.match.phase.over:
                try:
                    events = self.match.stop(self.clock(), cancelled=cancelled, reason=reason)
                    try:
                        await self._commit(events)
                    except LogDivergedError:  # found now: the events go out from memory
                        await self._commit(events)
                except Exception:  # still publish what can be published
                    log.exception("match stop failed", extra={"match_id": self.match.match_id})
        await self.stop_loops()
        try:
            await self._publish()
        except Exception:  # the host frees the slot regardless
            log.exception("match result not published", extra={"match_id": self.match.match_id})
            self.finished.set()

    # ----------------------------------------------------------------- queries
    def state(self, player: str) -> dict[str, Any]:
        return self.match.sync_state(player)

    def status(self) -> dict[str, Any]:
        m = self.match
        return {
            "match_id": m.match_id,
            "phase": str(m.phase),
            "ready": self.ready.is_set(),
            "players": len(m.players),
            "connected": sum(p.connected for p in m.players.values()),
            "official_price": None if m.official is None else str(m.official),
            "frozen": m.frozen,
            "end_at": m.end_at,
        }

    # ----------------------------------------------------------------- loops
    async def _become_ready(self) -> None:
        self._ready_at = self.clock()
        self.ready.set()
        if self.match.phase is GamePhase.WAITING:  # a restart of a live match is not news
            await self.store.set_status(ServerPhase.READY)
            if self.on_ready is not None:
                self.on_ready()
        log.info("match server ready", extra={"match_id": self.match.match_id})

    async def run_feed(self, ticks: AsyncIterator[FeedTick]) -> None:
        seen = self.last_tick_key()
        async for tick in ticks:
            if self.fault is not None:
                break
            if self.match.phase.over:
                break
            if seen is not None and tick.key() <= seen:
                continue  # already in the log before a restart
            await self.on_price(tick.price, tick.recv_ms, tick.stream_id)

    async def run_clock(self) -> None:
        """Let time pass, start on the join timeout, settle on a stop request, finish."""
        cfg = self.config
        next_board = 0
        interval = cfg.clock_interval_ms / 1000
        while not self.match.phase.over:
            if self.fault is not None:
                return  # the host settles a faulted match (settle_now)
            now = self.clock()
            if self._stop_request is not None:
                cancelled, reason = self._stop_request
                async with self._lock:
                    events = self._engine(self.match.stop, now, cancelled=cancelled, reason=reason)
                    await self._commit(events)
                break
            if (
                self.match.phase is GamePhase.WAITING
                and self._ready_at is not None
                and now - self._ready_at >= cfg.join_timeout_ms
            ):
                await self.start()
            async with self._lock:
                await self._commit(self._engine(self.match.advance, now))
            if self.last_feed_ms is not None:
                self.metrics.feed_staleness.set(max(0, now - self.last_feed_ms) / 1000)
            if self.match.phase is GamePhase.LIVE and now >= next_board:
                next_board = now + cfg.leaderboard_interval_ms
                board = self.match.leaderboard()
                await self.emitter.broadcast(
                    "leaderboard",
                    {"at": now, "players": len(board), "top": board[: cfg.leaderboard_size]},
                )
            # Wake when the next official price (or other timer) is due, so ticks go out
            # on time rather than on the next clock beat.
            due = self.match.next_due()
            wait = interval if due is None else min(interval, max(0, due - self.clock()) / 1000)
            await asyncio.sleep(wait)
        await self._publish()

    async def _publish(self) -> None:
        result = build_result(self.match, self.config.format, self.config.symbol)
        await self.store.save_summary(dumps(self.match.result()))
        try:
            published = await self.store.publish_result(result.model_dump_json(), self.traceparent)
        except NotDurableError as exc:
            self._not_durable(exc, 0)  # published on the primary; the host settles
            raise
        phase = ServerPhase.ended(self.match.phase)
        await self.store.set_status(phase, ended_at=self.match.ended_at or 0)
        log.info(
            "match over",
            extra={
                "match_id": self.match.match_id,
                "phase": str(phase),
                "result_published": published,
            },
        )
        self.finished.set()


async def _rebuild(
    store: MatchStore, header: dict[str, Any], entries: list[LogEntry]
) -> tuple[Match, int | None]:
    """From the newest snapshot plus the entries after it, or the whole log if the
    snapshot is missing or does not fit."""
    snap = await store.load_snapshot()
    if (
        snap is not None
        and snap.get("header") == header
        and int(snap.get("log_entries", 0)) <= len(entries)
    ):
        try:
            cut = int(snap["log_entries"])
            match = snapshot.restore(snap, entries[:cut])
            for entry in entries[cut:]:
                match.apply_entry(entry)
            return match, cut
        except (KeyError, ValueError, TypeError) as exc:
            log.warning("snapshot unusable, replaying the whole log", extra={"error": repr(exc)})
    match, mismatches = replay_entries(header, entries)
    if mismatches:
        log.error(
            "replay mismatch on restore",
            extra={"match_id": match.match_id, "mismatches": mismatches},
        )
    return match, None


def _public_result(result: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "match_id",
        "mode",
        "phase",
        "reason",
        "started_at",
        "ended_at",
        "final_price",
        "standings",
        "log_digest",
    )
    return {k: result[k] for k in keep}


def build_result(match: Match, fmt: str, symbol: str) -> MatchResult:
    """The versioned result message (see tradearena.contracts.results) from a finished match."""
    summary = match.result()
    return MatchResult.model_validate(
        {
            "match_id": match.match_id,
            "mode": match.mode,
            "format": fmt,
            "symbol": symbol,
            "phase": summary["phase"],
            "reason": summary["reason"],
            "created_at": match.created_at,
            "started_at": summary["started_at"],
            "ended_at": summary["ended_at"],
            "final_price": summary["final_price"],
            "frozen_ms": summary["frozen_ms"],
            "players": list(match.players),
            "standings": summary["standings"],
            "fills": [
                {k: v for k, v in f.items() if k not in ("balance", "position")}
                for f in match.fills
            ],
            "ledger": [line.to_wire() for line in match.ledger.lines],
            "log_entries": summary["log_entries"],
            "log_digest": summary["log_digest"],
            "ledger_digest": summary["ledger_digest"],
        }
    )


async def cancel_quietly(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
