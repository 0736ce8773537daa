"""One match-server process hosting its matches: a dedicated server's one match, or a
pool server's many (docs/matchserver.md, "Host mode").

`MatchHost` owns a `MatchRunner` per hosted match, each with its own emitter,
frame writer, store, presence and loops, and one `FeedHub` per symbol that
feeds them all. A dedicated server is a host with one fixed match that stops
when that match is over. A pool server (`server_id`, `capacity`):

- writes its state hash (`keys.server_state`) at start, on change and every
  `HEARTBEAT_INTERVAL_MS`; `ready=1` once Redis and the feed are up;
- restores every match of `keys.server_matches` (their logs), then reads its inbox
  from the id taken *before* that hash was read, starting each new assignment at
  once (acknowledged by the match's own `ServerPhase.READY`) and cancelling a match
  on a `cancel` entry;
- removes a match from `server_matches` once it is over and its result published;
- on SIGTERM (`drain`): `draining=1`, settles every match (the cancel reason of
  `keys.match_cancel`, else `shutdown`), then stops.

Isolation: a fault of one match (an exception escaping its loops or handlers, an
engine call over its CPU budget) settles that match alone, cancelled with the
fault as reason; the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio
from opentelemetry import trace
from opentelemetry.trace import Span
from redis.exceptions import RedisError

from matchserver import heap
from matchserver.broadcast import FlowConfig, FrameWriter
from matchserver.durability import ReplicaCheck, ReplicaWaiter, WaitPolicy
from matchserver.engine.match import Match
from matchserver.feed.hub import FeedHub
from matchserver.feed.relay_source import RelaySource
from matchserver.feed.sources import FeedTick, synthetic_with_history
from matchserver.handlers import NAMESPACE, MatchNamespace, Seat, SocketEmitter
from matchserver.metrics import MatchMetrics
from matchserver.presence import Presence
from matchserver.runner import MatchRunner, RunnerConfig, cancel_quietly, wall_ms
from matchserver.settings import MatchServerSettings
from matchserver.spectators import LoopLag, MatchSpectators, SpectatorGate
from matchserver.store import MatchStore
from tradearena import tracing
from tradearena.contracts import keys
from tradearena.contracts.phases import GamePhase
from tradearena.contracts.pool import (
    HEARTBEAT_INTERVAL_MS,
    INBOX_CANCEL_FIELD,
    INBOX_FIELD,
    Assignment,
    MatchPresence,
    ServerState,
)
from tradearena.contracts.spectate import SPECTATE_EVENT
from tradearena.modes import Catalogue, load_catalogue
from tradearena.redisconn import AnyRedis

log = logging.getLogger(__name__)
_tracer = tracing.tracer("matchserver.host")

HISTORY_MARGIN_MS = 2000
STATE_POLL_S = 0.1  # a change reaches the state hash within this  # feed history kept beyond the longest price delay
SHUTDOWN = "shutdown"
CANCELLED = "cancelled"  # a cancel entry whose reason key is gone


def new_match(catalogue: Catalogue, a: Assignment, now: int) -> Match:
    """The engine's match for an assignment (a dedicated server's settings are one)."""
    mode = catalogue.mode(a.mode)
    duration = a.duration_ms or catalogue.duration_ms(a.format)
    if not a.players:
        raise ValueError("a match needs players")
    if len(a.players) > mode.players.max:
        raise ValueError(f"mode {a.mode} allows at most {mode.players.max} players")
    # Created a delay window in the past, so a feed history can warm the delay line.
    created = now - mode.rules.price_delay_ms - 1000
    return Match(a.match_id, a.mode, mode.rules, a.players, duration, created)


def dedicated_assignment(settings: MatchServerSettings) -> Assignment:
    assert settings.match_id is not None
    return Assignment(
        settings.match_id,
        settings.mode,
        settings.format,
        settings.duration_ms or 0,
        settings.players,
        settings.symbol,
        0,
        settings.traceparent,
    )


def history_ms(catalogue: Catalogue) -> int:
    """Feed history a hub keeps: the longest price delay of any mode, plus a margin."""
    longest = max((m.rules.price_delay_ms for m in catalogue.modes.values()), default=0)
    return longest + HISTORY_MARGIN_MS


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@dataclass(eq=False)
class HostedMatch:
    """One hosted match: what the namespace routes to, and what the host cleans up."""

    assignment: Assignment
    runner: MatchRunner
    emitter: SocketEmitter
    presence: Presence
    spectators: MatchSpectators
    ticks: AsyncGenerator[FeedTick, None] | None = None
    supervisor: asyncio.Task[None] | None = None
    players: int = field(default=0)
    span: Span | None = None  # `match`: from hosting to the match's end (its trace)

    @property
    def match_id(self) -> str:
        return self.assignment.match_id


class MatchHost:
    def __init__(
        self,
        settings: MatchServerSettings,
        redis: AnyRedis,
        sio: socketio.AsyncServer,
        metrics: MatchMetrics,
        *,
        clock: Callable[[], int] = wall_ms,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.sio = sio
        self.metrics = metrics
        self.clock = clock
        self.catalogue = catalogue or load_catalogue(settings.catalogue)
        self.history_ms = history_ms(self.catalogue)
        self.server_id = settings.server_id
        self.capacity = settings.capacity or 1
        self.matches: dict[str, HostedMatch] = {}
        self.hubs: dict[str, FeedHub] = {}
        self.namespace: MatchNamespace | None = None
        self.accepting = asyncio.Event()  # pool: AnyRedis and the feed up (ready=1)
        self.draining = False
        self.done = asyncio.Event()  # dedicated: its match is over and gone
        self.started_ms = clock()
        self.on_seated: Callable[[str, str, bool], None] | None = None  # (mid, player, in)
        self.on_count: Callable[[int], None] | None = None  # hosted matches changed
        self._tasks: list[asyncio.Task[None]] = []
        self._state_dirty = False
        self._reported_count = -1
        self._flow = FlowConfig(window=settings.tick_ack_window, stuck_ms=settings.stuck_client_ms)
        self.waiter = ReplicaWaiter(
            redis,
            WaitPolicy(settings.redis_wait_replicas, settings.redis_wait_timeout_ms),
            observe=metrics.replica_wait.observe,
            timed_out=metrics.replica_wait_timeouts.inc,
        )
        self.replica_check = ReplicaCheck(redis, settings.redis_wait_replicas)
        # Redis has the replicas commits wait for (always, when they wait for none): a
        # pool server without them is not `ready` in its state hash, so no allocator
        # binds a match to it (and its /readyz says the same).
        self.durable = True
        self.lag = LoopLag(lambda ms: metrics.loop_lag.set(ms / 1000))
        self.gate = SpectatorGate(
            settings.max_spectators, settings.spectator_lag_limit_ms, self.lag
        )
        self._gauges()

    @property
    def pooled(self) -> bool:
        return self.server_id is not None

    # ----------------------------------------------------------------- metrics
    def _gauges(self) -> None:
        m = self.metrics
        m.capacity.set(self.capacity)
        m.hosted.set_function(lambda: len(self.matches))
        m.players_connected.set_function(
            lambda: sum(h.runner.connected() for h in self.matches.values())
        )
        m.spectators_connected.set_function(lambda: self.gate.connected)
        m.clients_behind.set_function(
            lambda: sum(h.emitter.writer.behind for h in self.matches.values())
        )
        for phase in GamePhase:
            m.phase.labels(str(phase)).set_function(self._in_phase(phase))

    def _in_phase(self, phase: GamePhase) -> Callable[[], float]:
        return lambda: sum(h.runner.match.phase is phase for h in self.matches.values())

    # ----------------------------------------------------------------- routing
    def route(self, match_id: str | None) -> Seat | None:
        if not self.pooled:  # the one match verifies every token (its own refusal codes)
            return next(iter(self.matches.values()), None)
        return None if match_id is None else self.matches.get(match_id)

    def seated(self, seat: Seat, player: str, connected: bool) -> None:
        if self.on_seated is not None:
            self.on_seated(seat.runner.match.match_id, player, connected)

    # ----------------------------------------------------------------- start
    async def start(self) -> None:
        """A dedicated server's match, or a pool server's restore, inbox and heartbeat."""
        self.lag.start()
        self._hub(self.settings.symbol)
        if not self.pooled:
            await self.add(dedicated_assignment(self.settings), "new")
            return
        # A fresh process is not draining; from here only it or its pool controller sets
        # `draining`, never back to 0 (a heartbeat must not undo a controller's drain mark).
        await self.redis.hset(keys.server_state(self._sid), ServerState.DRAINING, 0)
        self.durable = await self.replica_check.ok()
        await self._write_state()
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))
        inbox = keys.server_inbox(self._sid)
        last = await self.redis.xrevrange(inbox, count=1)  # before the hash: nothing missed
        last_id = _text(last[0][0]) if last else "0-0"
        restored = await self.redis.hgetall(keys.server_matches(self._sid))
        for mid, raw in restored.items():
            await self._take(_text(mid), raw, "restored")
        # Start-up is over: modules, schemas and the restored matches (matchserver.heap).
        self.metrics.gc_frozen.set(heap.freeze())
        self._tasks.append(asyncio.create_task(self._accept_when_warm(), name="warm"))
        self._tasks.append(asyncio.create_task(self._inbox(last_id), name="inbox"))
        log.info(
            "pool server started",
            extra={
                "server_id": self.server_id,
                "capacity": self.capacity,
                "restored": len(restored),
            },
        )

    @property
    def _sid(self) -> str:
        assert self.server_id is not None
        return self.server_id

    async def _accept_when_warm(self) -> None:
        await self._hub(self.settings.symbol).warm.wait()
        self.accepting.set()
        self._state_changed()

    def _hub(self, symbol: str) -> FeedHub:
        hub = self.hubs.get(symbol)
        if hub is None:
            s = self.settings
            if s.feed_source == "relay":
                source = RelaySource(
                    self.redis, symbol, history_ms=self.history_ms, clock=self.clock
                )
                reader = source.ticks
            else:

                def reader() -> AsyncGenerator[FeedTick, None]:
                    return synthetic_with_history(
                        symbol,
                        s.synthetic_seed,
                        s.synthetic_interval_ms,
                        self.history_ms,
                        self.clock,
                    )

            hub = self.hubs[symbol] = FeedHub(symbol, reader, self.history_ms, clock=self.clock)
            hub.start()
        return hub

    # ----------------------------------------------------------------- matches
    def _config(self, a: Assignment) -> RunnerConfig:
        s = self.settings
        return RunnerConfig(
            format=a.format,
            symbol=a.symbol,
            join_timeout_ms=s.join_timeout_ms,
            clock_interval_ms=s.clock_interval_ms,
            leaderboard_interval_ms=s.leaderboard_interval_ms,
            leaderboard_size=s.leaderboard_size,
            snapshot_every_entries=s.snapshot_every_entries,
            freeze_heap=True,  # see matchserver.heap
            engine_budget_ms=s.engine_budget_ms,
        )

    async def add(self, a: Assignment, how: str) -> HostedMatch:
        """Build (or restore from its log) one match and start its loops."""
        store = MatchStore(self.redis, a.match_id, self.waiter)
        emitter = SocketEmitter(self.sio, FrameWriter(self._flow, self.metrics))
        fresh = new_match(self.catalogue, a, self.clock())
        runner = await MatchRunner.open(
            fresh, store, emitter, self.metrics, self._config(a), self.clock
        )
        if how == "new" and runner.match.log:
            how = "restored"  # a dedicated server restarted
        presence = Presence(store.set_presence, MatchPresence.INTERVAL_MS, label=a.match_id)
        span = _tracer.start_span(
            "match",
            context=tracing.context_of(a.traceparent),
            attributes={
                "match.id": a.match_id,
                "match.mode": a.mode,
                "match.format": a.format,
                "match.players": len(a.players),
                "match.hosted_as": how,
            },
        )
        runner.traceparent = tracing.traceparent_of(span)
        spectators = MatchSpectators(
            runner,
            self.catalogue.mode(a.mode).rules.spectate,  # the catalogue's, even when restored
            a.symbol,
            FrameWriter(self._flow, conflated=(SPECTATE_EVENT,)),
            self.gate,
            self.metrics,
            store.set_spectators,
            self.clock,
            NAMESPACE,
        )
        hosted = HostedMatch(
            a, runner, emitter, presence, spectators, players=len(a.players), span=span
        )
        self.matches[a.match_id] = hosted
        runner.on_presence = lambda: self._presence(hosted)
        if a.assigned_at_ms and how == "new":  # a restored match's Ready is not an ack
            runner.on_ready = lambda: self.metrics.allocation_ack.observe(
                max(0, self.clock() - a.assigned_at_ms) / 1000
            )
        history: list[FeedTick] = []
        if not runner.match.phase.over:
            history, hosted.ticks = self._hub(a.symbol).subscribe()
        with trace.use_span(span, end_on_exit=False):  # the loops log in the match's trace
            runner.start_loops(hosted.ticks, history)
            hosted.supervisor = asyncio.create_task(
                self._supervise(hosted), name=f"host:{a.match_id}"
            )
        self._presence(hosted)
        self.metrics.matches_started.labels(how).inc()
        self._state_changed()
        if self.pooled and how == "restored" and not runner.match.phase.over:
            reason = await store.cancel_reason()  # a cancel that came while we were down
            if reason is not None:
                runner.request_stop(cancelled=True, reason=reason)
        log.info(
            "match hosted",
            extra={"match_id": a.match_id, "how": how, "hosted": len(self.matches)},
        )
        return hosted

    def _presence(self, hosted: HostedMatch) -> None:
        hosted.presence.update(hosted.runner.connected(), hosted.players)
        self._state_changed()

    async def _supervise(self, hosted: HostedMatch) -> None:
        """Wait for the match to end or fault; settle a fault alone; then let clients read
        match_end, close its sockets and free its slot."""
        runner = hosted.runner
        ended = asyncio.create_task(runner.finished.wait())
        faulted = asyncio.create_task(runner.faulted.wait())
        await asyncio.wait({ended, faulted}, return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        faulted.cancel()
        fault = runner.fault
        if fault is not None and not runner.finished.is_set():
            self.metrics.match_faults.labels(fault).inc()
            await runner.settle_now(cancelled=True, reason=fault)
        outcome = "failed" if fault is not None else str(runner.match.phase)
        self.metrics.matches_ended.labels(outcome).inc()
        if hosted.span is not None:  # the result is out: the match's span ends
            hosted.span.set_attribute("match.outcome", outcome)
            hosted.span.end()
        if not self.draining:  # spectators watch the delayed end (bounded by the delay)
            rules = hosted.spectators.rules
            await hosted.spectators.wait_ended((rules.delay_ms + 2 * rules.frame_ms) / 1000)
        await asyncio.sleep(self.settings.linger_ms / 1000)  # let clients read match_end
        await self._close_sockets(hosted)
        await self._remove(hosted)

    async def _close_sockets(self, hosted: HostedMatch) -> None:
        """A pool server closes a leaving match's sockets; a dedicated server closes every
        socket as it stops (`app.serve`)."""
        if self.namespace is None or not self.pooled:
            return
        for sid in self.namespace.sids_of(hosted):
            with contextlib.suppress(Exception):
                await self.sio.disconnect(sid, namespace=NAMESPACE)

    async def _remove(self, hosted: HostedMatch) -> None:
        runner = hosted.runner
        await runner.stop_loops()
        if hosted.ticks is not None:
            with contextlib.suppress(Exception):
                await hosted.ticks.aclose()
        await hosted.presence.close()
        await hosted.spectators.close()
        with contextlib.suppress(Exception):  # the last counts, straight away
            await runner.store.set_presence(runner.connected(), hosted.players)
            await runner.store.set_spectators(0)
        self.matches.pop(hosted.match_id, None)
        # No cycle may outlive the match: what was frozen of it is then freed by
        # reference counting (matchserver.heap).
        runner.on_presence = runner.on_ready = None
        runner.loops.clear()
        hosted.ticks = hosted.supervisor = None
        if self.pooled:
            await self._release(hosted)
        self._state_changed()
        log.info(
            "match left",
            extra={
                "match_id": hosted.match_id,
                "phase": str(runner.match.phase),
                "hosted": len(self.matches),
            },
        )
        if not self.pooled:
            self.done.set()

    async def _release(self, hosted: HostedMatch) -> None:
        """Free the slot once the result is out; a result not yet published keeps it (a
        restart restores the match and publishes)."""
        try:
            if await hosted.runner.store.result_published():
                await self.redis.hdel(keys.server_matches(self._sid), hosted.match_id)
            else:
                log.error(
                    "match kept assigned: result not published", extra={"match_id": hosted.match_id}
                )
        except RedisError as exc:
            log.error(
                "match slot not freed", extra={"match_id": hosted.match_id, "error": repr(exc)}
            )

    # ----------------------------------------------------------------- inbox
    async def _inbox(self, last_id: str) -> None:
        inbox = keys.server_inbox(self._sid)
        while True:
            try:
                reply: Any = await self.redis.xread({inbox: last_id}, block=1000, count=100)
            except RedisError as exc:
                log.warning("inbox read failed", extra={"error": repr(exc)})
                await asyncio.sleep(1)
                continue
            for entry_id, raw in reply[0][1] if reply else []:
                last_id = _text(entry_id)
                fields = {_text(k): _text(v) for k, v in raw.items()}
                if INBOX_FIELD in fields:
                    await self._assigned(fields[INBOX_FIELD])
                elif INBOX_CANCEL_FIELD in fields:
                    await self.cancel(fields[INBOX_CANCEL_FIELD])

    async def _assigned(self, match_id: str) -> None:
        if match_id in self.matches or self.draining:
            return
        raw = await self.redis.hget(keys.server_matches(self._sid), match_id)
        if raw is None:
            return  # gone before we read it
        await self._take(match_id, raw, "new")

    async def _take(self, match_id: str, raw: Any, how: str) -> None:
        try:
            assignment = Assignment.from_json(raw)
            await self.add(assignment, how)
        except (ValueError, KeyError, TypeError) as exc:
            # An assignment no server could run (unknown mode, too many players):
            # refuse it for good, so it does not hold a slot.
            log.error("assignment refused", extra={"match_id": match_id, "error": repr(exc)})
            self.metrics.matches_ended.labels("failed").inc()
            await self.redis.hdel(keys.server_matches(self._sid), match_id)
        except RedisError as exc:
            log.error("assignment not started", extra={"match_id": match_id, "error": repr(exc)})

    async def cancel(self, match_id: str) -> None:
        hosted = self.matches.get(match_id)
        if hosted is None:
            return
        reason = await hosted.runner.store.cancel_reason()
        hosted.runner.request_stop(cancelled=True, reason=reason or CANCELLED)
        log.info("match cancel requested", extra={"match_id": match_id, "reason": reason})

    # ----------------------------------------------------------------- state
    def _state_changed(self) -> None:
        self._state_dirty = True
        if self.on_count is not None and len(self.matches) != self._reported_count:
            self._reported_count = len(self.matches)
            self.on_count(self._reported_count)

    def state(self) -> dict[str, str | int]:
        state: dict[str, str | int] = {
            ServerState.CAPACITY: self.capacity,
            ServerState.PLAYERS: sum(h.runner.connected() for h in self.matches.values()),
            ServerState.READY: int(self.accepting.is_set() and self.durable),
            ServerState.HEARTBEAT_MS: self.clock(),
            ServerState.STARTED_MS: self.started_ms,
        }
        if self.draining:  # set once stopping; cleared only by a fresh start
            state[ServerState.DRAINING] = 1
        return state

    async def _write_state(self) -> None:
        await self.redis.hset(keys.server_state(self._sid), mapping=self.state())  # type: ignore[arg-type]

    async def _heartbeat(self) -> None:
        """The state hash on a change (at most every STATE_POLL_S) and at least every
        HEARTBEAT_INTERVAL_MS."""
        written = 0.0
        loop = asyncio.get_running_loop()
        while True:
            durable = await self.replica_check.ok()  # cached: INFO every few seconds
            if durable != self.durable:
                self.durable = durable
                self._state_dirty = True
                log.warning(
                    "redis replicas" + (" back" if durable else " missing: not ready"),
                    extra={
                        "replicas_wanted": self.replica_check.wanted,
                        "replicas_seen": self.replica_check.replicas,
                    },
                )
            due = written + HEARTBEAT_INTERVAL_MS / 1000
            if self._state_dirty or loop.time() >= due:
                self._state_dirty = False
                written = loop.time()
                try:
                    await self._write_state()
                except RedisError as exc:
                    log.warning("server state not written", extra={"error": repr(exc)})
            await asyncio.sleep(STATE_POLL_S)

    def ready(self) -> bool:
        """/readyz: a pool server accepting; a dedicated one's match ready and not over."""
        if self.pooled:
            return self.accepting.is_set() and not self.draining
        hosted = next(iter(self.matches.values()), None)
        return (
            hosted is not None
            and hosted.runner.ready.is_set()
            and not hosted.runner.match.phase.over
        )

    def status(self) -> dict[str, Any]:
        if not self.pooled:
            hosted = next(iter(self.matches.values()), None)
            return hosted.runner.status() if hosted is not None else {"phase": "gone"}
        return {
            "server_id": self.server_id,
            "capacity": self.capacity,
            "ready": self.accepting.is_set(),
            "draining": self.draining,
            "hosted": len(self.matches),
            "matches": [h.runner.status() for h in self.matches.values()],
        }

    # ----------------------------------------------------------------- stop
    async def drain(self) -> None:
        """SIGTERM: accept nothing more, settle every hosted match, wait until each is
        published and gone."""
        self.draining = True
        if self.pooled:
            with contextlib.suppress(RedisError):
                await self._write_state()
        for hosted in list(self.matches.values()):
            reason = await hosted.runner.store.cancel_reason()
            hosted.runner.request_stop(cancelled=reason is not None, reason=reason or SHUTDOWN)
        await self.wait_empty()

    async def wait_empty(self) -> None:
        """Until every supervised match has left (one whose start failed before its
        supervisor began has nothing to wait for: `close` stops what it has)."""
        while supervisors := [h.supervisor for h in self.matches.values() if h.supervisor]:
            await asyncio.gather(*supervisors, return_exceptions=True)

    async def close(self) -> None:
        """Stop whatever is still running (the process is ending)."""
        for task in self._tasks:
            await cancel_quietly(task)
        for hosted in list(self.matches.values()):
            if hosted.supervisor is not None:
                await cancel_quietly(hosted.supervisor)
            await hosted.runner.stop_loops()
            await hosted.presence.close()
            await hosted.spectators.close()
        await self.lag.close()
        for hub in self.hubs.values():
            await hub.close()
        if self.pooled and self.draining:
            with contextlib.suppress(RedisError):
                await self._write_state()
        await self.waiter.aclose()
