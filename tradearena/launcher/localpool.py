"""The local pool runtime: matches start at once on warm, dense match servers.

The default of `tradearena up`. A few `tradearena matchserver` processes run as pool
servers (`pool_server_config`: a server id and a capacity, no match of their own),
each with its own players' port and admin port, and each hosts up to `capacity`
matches. `start(spec)` picks a server in Agones' Packed order (`packing.choose`)
from this runtime's bookkeeping, corrected by what the servers record in Redis (the
length of `keys.server_matches`), and allocates the match to it
(`allocation.allocate`). The server starts the match at once and reports it Ready on
the match's own phase stream, followed exactly as the process runtime follows a
dedicated server (`tracking`). Players are given the server's address and port.

Buffer (`orchestration.buffer`, Agones' Buffer policy): the pool keeps `buffer` free
slots between `min_servers` and `max_servers`, starting a server when free slots
drop below it and stopping a surplus server that idled for `idle_stop_s`. A match
that finds no free slot starts a server itself (a cold start, within max_servers)
and waits for it; both show in the console, the log and the metrics.

A server process that dies is restarted in place, with the same id and ports; it
restores its matches from Redis (every hosted match keeps its phase and counts a
restart). A server that keeps failing (its restart budget spent) is given up and its
matches fail. `cancel` asks the server to settle one match (`allocation.request_cancel`).
`close()` sends every server SIGTERM (each settles its matches) and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import RedisError

from tradearena import tracing
from tradearena.contracts import keys
from tradearena.contracts.orchestration import MatchSpec, MatchStatus
from tradearena.contracts.phases import MatchPhase
from tradearena.contracts.pool import Assignment, ServerState
from tradearena.contracts.serverconfig import pool_server_config
from tradearena.launcher.localruntime import (
    LocalRuntimeConfig,
    deployment,
    placement_of,
    runtime_tracer,
    spawn_server,
)
from tradearena.launcher.localservices import free_port
from tradearena.launcher.scrape_targets import scrape_address
from tradearena.launcher.tracking import (
    MatchBook,
    PhaseFollower,
    Placement,
    Tracked,
    log_failure,
)
from tradearena.orchestration import allocation
from tradearena.orchestration.buffer import BufferPolicy, PoolMember, desired, plan
from tradearena.orchestration.packing import Candidate, choose
from tradearena.orchestration.phases import Event
from tradearena.redisconn import AnyRedis
from tradearena.retry import RestartBudget

log = logging.getLogger(__name__)

# Why a server was started: the pool's minimum, the buffer of free slots, or a match
# that found no free slot (it waits for this server: a cold start).
StartReason = Literal["minimum", "buffer", "no_room"]
_READY_POLL_S = 0.05  # how often a starting server's state hash is read
_SETTLE_S = 30.0  # close(): how long servers get to settle their matches
_EMPTY_GRACE_S = 2.0  # close(): how long a server that hosts nothing may take to exit
_EXIT_POLL_S = 0.2


@dataclass(frozen=True)
class LocalPoolConfig:
    runtime: LocalRuntimeConfig  # what every server is given (Redis, key, hosts, TLS...)
    policy: BufferPolicy = field(default_factory=BufferPolicy)
    server_prefix: str = "local"  # server ids are <prefix>-1, <prefix>-2...
    refresh_s: float = 1.0  # how often the servers' Redis records and the policy are checked
    restart_initial_s: float = 0.2  # backoff of a server restarted in place
    restart_max_s: float = 5.0


class PoolMetrics:
    """The pool's own figures; `up` serves them on the lobby's /metrics."""

    def __init__(self) -> None:
        self.servers_started = Counter(
            "tradearena_local_pool_servers_started_total",
            "Pool servers started, by reason: minimum, buffer (free slots below the buffer)"
            " or no_room (a match found no free slot: a cold start)",
            ["reason"],
            registry=None,
        )
        self.server_restarts = Counter(
            "tradearena_local_pool_server_restarts_total",
            "Pool server processes that died and were restarted in place",
            registry=None,
        )
        self.servers_given_up = Counter(
            "tradearena_local_pool_servers_given_up_total",
            "Pool servers that kept failing; their matches failed",
            registry=None,
        )
        self.allocations = Counter(
            "tradearena_local_pool_allocations_total",
            "Matches allocated, by start: warm (a free slot was there) or cold (waited for a"
            " new server)",
            ["start"],
            registry=None,
        )
        self.ready_seconds = Histogram(
            "tradearena_local_pool_ready_seconds",
            "From a match's start request to its server's Ready",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=None,
        )
        self.servers = Gauge(
            "tradearena_local_pool_servers", "Pool servers running or starting", registry=None
        )
        self.free_slots = Gauge(
            "tradearena_local_pool_free_slots", "Free match slots on ready servers", registry=None
        )

    def collectors(self) -> tuple[Counter | Gauge | Histogram, ...]:
        return (
            self.servers_started,
            self.server_restarts,
            self.servers_given_up,
            self.allocations,
            self.ready_seconds,
            self.servers,
            self.free_slots,
        )


@dataclass
class _Server:
    server_id: str
    port: int
    admin_port: int
    budget: RestartBudget
    proc: asyncio.subprocess.Process | None = None
    ready: bool = False  # accepting: its state says ready, and this process wrote it
    stopping: bool = False  # told to go (surplus, or close)
    gone: bool = False  # stopped, or given up
    matches: set[str] = field(default_factory=set)  # allocated here by this runtime, not over
    reported: int = 0  # its hosted count in Redis, as last read
    idle_since: float | None = None
    restarts: int = 0
    task: asyncio.Task[None] | None = None

    @property
    def count(self) -> int:
        return max(len(self.matches), self.reported)

    @property
    def member(self) -> bool:
        """Counted by the buffer policy: running or starting, not on its way out."""
        return not (self.stopping or self.gone)


class _RefusedError(Exception):
    """The match cannot be allocated at all (not: no room now)."""


@dataclass
class _PoolMatch(Tracked):
    server: _Server | None = None  # where it is (being) allocated
    assigned: bool = False  # the server has recorded it
    requested_at: float = 0.0
    cancel_sent: bool = False
    task: asyncio.Task[None] | None = None


class LocalPoolOrchestrator:
    def __init__(
        self,
        config: LocalPoolConfig,
        redis: AnyRedis,
        on_change: Callable[[MatchSpec, MatchStatus], None] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.redis = redis
        self.say = say
        self.metrics = PoolMetrics()
        self._book: MatchBook[_PoolMatch] = MatchBook(on_change)
        self._phases = PhaseFollower(redis)
        self._servers: dict[str, _Server] = {}
        self._waiting: set[str] = set()  # matches that found no free slot yet
        self._next = 0
        self._lock = asyncio.Lock()  # choice + allocation, and changes to the server set
        self._change = asyncio.Event()  # set (and replaced) when a server or slot changes
        self._poke = asyncio.Event()  # asks the maintenance loop to look now
        self._maintainer: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def policy(self) -> BufferPolicy:
        return self.config.policy

    @property
    def servers(self) -> dict[str, _Server]:
        """Every server of the pool, by id (read-only use: tests, status)."""
        return self._servers

    # ------------------------------------------------------------------ lifecycle
    def metrics_addresses(self) -> list[str]:
        """host:port of each running pool server's admin port (/metrics)."""
        host = self.config.runtime.bind_host
        return [scrape_address(host, s.admin_port) for s in self._servers.values() if not s.gone]

    async def open(self, timeout_s: float | None = None) -> int:
        """Start the first servers (the minimum and the buffer) and wait until they are
        ready; returns how many are. Raises if none came up."""
        async with self._lock:
            for _ in range(desired(self.policy, 0)):
                self._add_server("minimum")
        self._maintainer = asyncio.create_task(self._maintain(), name="local-pool")
        self._maintainer.add_done_callback(log_failure)
        limit = self.config.runtime.startup_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        while True:
            change = self._change
            starting = [s for s in self._servers.values() if s.member and not s.ready]
            if not starting or time.monotonic() >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(change.wait(), deadline - time.monotonic())
        ready = sum(1 for s in self._servers.values() if s.ready)
        if ready == 0 and self._servers:
            raise RuntimeError(
                f"no pool server became ready within {limit:.0f} s; see "
                f"{self.config.runtime.log_dir}/server-*.log"
            )
        return ready

    async def close(self) -> None:
        """SIGTERM every server (each settles its matches and exits), then wait."""
        self._closing = True
        if self._maintainer is not None:
            self._maintainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintainer
        servers = list(self._servers.values())
        for server in servers:
            server.stopping = True
            if server.proc is not None and server.proc.returncode is None:
                server.proc.send_signal(signal.SIGTERM)
        await asyncio.gather(*(self._await_exit(server) for server in servers))
        running = [s.task for s in servers if s.task is not None and not s.task.done()]
        if running:  # a server being spawned just now stops itself once it exists
            await asyncio.wait(running, timeout=_SETTLE_S)
        # Their last reports (Finished / Cancelled) are on the streams already.
        tasks = [m.task for m in self._book.matches.values() if m.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for task in [*tasks, *(s.task for s in servers if s.task is not None)]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._phases.close()

    async def _await_exit(self, server: _Server) -> None:
        """Until a stopping server exits. One that hosts nothing any more (every match
        settled and published) but lingers past a grace period, or that is still there
        after `_SETTLE_S`, is killed: nothing is lost by then."""
        proc = server.proc
        if proc is None:
            return
        deadline = time.monotonic() + _SETTLE_S
        empty_since: float | None = None
        while proc.returncode is None and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), _EXIT_POLL_S)
            if proc.returncode is not None:
                break
            with contextlib.suppress(RedisError, OSError):
                if await self.redis.hlen(keys.server_matches(server.server_id)) == 0:
                    empty_since = empty_since or time.monotonic()
            if empty_since is not None and time.monotonic() - empty_since > _EMPTY_GRACE_S:
                break
        if proc.returncode is None:
            log.warning(
                "pool server did not exit after settling; killed",
                extra={"server": server.server_id},
            )
            proc.kill()
            await proc.wait()

    # ------------------------------------------------------------------ contract
    async def start(self, spec: MatchSpec) -> None:
        if spec.match_id in self._book.matches:
            return  # idempotent: one allocation per match, never two
        match = _PoolMatch(
            spec, MatchStatus(spec.match_id, MatchPhase.PENDING), requested_at=time.monotonic()
        )
        self._book.add(match)
        match.task = asyncio.create_task(self._run_match(match), name=f"match-{spec.match_id}")
        match.task.add_done_callback(log_failure)

    async def status(self, match_id: str) -> MatchStatus | None:
        return self._book.status(match_id)

    def watch(self, match_id: str) -> AsyncIterator[MatchStatus]:
        return self._book.watch(match_id)

    async def cancel(self, match_id: str, reason: str) -> None:
        match = self._book.get(match_id)
        if match is None or match.status.phase.terminal:
            return
        match.cancel_reason = reason
        await self._set(match, Event.CANCEL, reason=reason)
        if match.assigned:
            await self._send_cancel(match)
        else:  # not allocated yet: the allocation stops; wake it
            self._changed()

    async def list_active(self) -> list[MatchStatus]:
        return self._book.active()

    # ------------------------------------------------------------------ one match
    async def _set(self, match: _PoolMatch, event: Event, reason: str | None = None) -> None:
        await self._book.apply(match, event, self._placement(match), reason)

    def _placement(self, match: _PoolMatch) -> Placement | None:
        return None if match.server is None else self._placement_on(match.server)

    def _placement_on(self, server: _Server) -> Placement:
        return placement_of(
            self.config.runtime, server.port, server.admin_port, server=server.server_id
        )

    async def _send_cancel(self, match: _PoolMatch) -> None:
        assert match.server is not None
        if match.cancel_sent or match.cancel_reason is None:
            return
        match.cancel_sent = True
        await allocation.request_cancel(
            self.redis, match.server.server_id, match.spec.match_id, match.cancel_reason
        )

    async def _run_match(self, match: _PoolMatch) -> None:
        match_id = match.spec.match_id
        await self._phases.follow(match_id, partial(self._set, match))
        try:
            if not await self._allocate_until_ready(match):
                return
            if match.status.phase is MatchPhase.READY:
                self.metrics.ready_seconds.observe(time.monotonic() - match.requested_at)
            async with match.changed:
                await match.changed.wait_for(lambda: match.status.phase.terminal)
        finally:
            self._phases.unfollow(match_id)
            self._release(match)

    async def _allocate_until_ready(self, match: _PoolMatch) -> bool:
        """Allocate the match and wait for its server's Ready; False if it never gets
        there (settled here). Traced as `pool.allocate` in the match's trace; the
        assignment carries that span on to the match server."""
        with runtime_tracer(__name__).start_as_current_span(
            "pool.allocate",
            context=tracing.context_of(match.spec.traceparent),
            attributes={"match.id": match.spec.match_id},
        ) as span:
            server = await self._allocate(match)
            if server is None:
                span.set_attribute("allocation.outcome", "none")
                return False
            span.set_attribute("server.id", server.server_id)
            if match.cancel_reason is not None:
                await self._send_cancel(match)
            try:
                await asyncio.wait_for(
                    self._book.left(match, MatchPhase.PENDING, MatchPhase.CREATING),
                    self.config.runtime.startup_timeout_s,
                )
            except TimeoutError:
                span.set_attribute("allocation.outcome", "startup_timeout")
                match.cancel_reason = match.cancel_reason or "startup timeout"
                await self._send_cancel(match)  # the server drops it, freeing the slot
                await self._set(match, Event.STARTUP_TIMEOUT, reason="startup timeout")
                return False
            span.set_attribute("allocation.outcome", str(match.status.phase))
            return True

    def _release(self, match: _PoolMatch) -> None:
        server = match.server
        if server is None or match.spec.match_id not in server.matches:
            return
        server.matches.discard(match.spec.match_id)
        server.reported = max(0, server.reported - 1)  # until the next read says otherwise
        if not server.matches:
            server.idle_since = time.monotonic()
        self._changed()

    async def _allocate(self, match: _PoolMatch) -> _Server | None:
        """Bind the match to a server with a free slot, starting one if none has; None if
        it was cancelled first or no slot came in time (it is then settled here)."""
        try:
            return await self._allocate_waiting(match)
        finally:
            self._waiting.discard(match.spec.match_id)

    async def _allocate_waiting(self, match: _PoolMatch) -> _Server | None:
        deadline = time.monotonic() + self.config.runtime.startup_timeout_s
        cold = False
        while True:
            change = self._change
            if match.cancel_reason is not None:
                await self._set(match, Event.STOPPED)
                return None
            async with self._lock:
                try:
                    server = await self._try_servers(match)
                except _RefusedError as exc:
                    await self._set(match, Event.FAILED, reason=str(exc))
                    return None
                if server is not None:
                    self.metrics.allocations.labels("cold" if cold else "warm").inc()
                    self._poke.set()  # the buffer may need a server now
                    return server
                # No free slot: this match waits, with every other one that found none,
                # for the slots of servers starting now; start one more if they are short.
                self._waiting.add(match.spec.match_id)
                coming = sum(
                    max(0, self.policy.capacity - s.count)
                    for s in self._servers.values()
                    if s.member and not s.ready
                )
                if len(self._waiting) > coming and self._members() < self.policy.max_servers:
                    self._add_server("no_room")
                cold = True
            left = deadline - time.monotonic()
            if left <= 0:
                reason = f"no free slot on {self._members()} pool server(s) in time"
                await self._set(match, Event.STARTUP_TIMEOUT, reason=reason)
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(change.wait(), left)

    async def _try_servers(self, match: _PoolMatch) -> _Server | None:
        """Under the lock: the servers in Packed order until one takes the match."""
        refused: set[str] = set()
        while True:
            candidates = [
                self._candidate(s) for s in self._servers.values() if s.server_id not in refused
            ]
            chosen = choose(candidates)
            if chosen is None:
                return None
            server = self._servers[chosen.server_id]
            # Set before the assignment: its server may report Ready at once.
            match.server = server
            if match.status.phase is MatchPhase.PENDING:  # a server exists: Creating
                await self._set(match, Event.CREATED)
            # The assignment carries the current span (`pool.allocate`) of the match's trace.
            assignment = Assignment.of(
                match.spec, int(time.time() * 1000), tracing.current_traceparent()
            )
            outcome = await allocation.allocate(self.redis, server.server_id, assignment)
            if outcome == allocation.BOUND_ELSEWHERE:
                bound = await allocation.bound_server(self.redis, match.spec.match_id)
                hosted = bound is not None and bound in self._servers
                if not hosted or match.spec.match_id not in await allocation.hosted(
                    self.redis, str(bound)
                ):
                    raise _RefusedError(f"the match is bound to another server ({bound})")
                server, outcome = self._servers[str(bound)], allocation.ASSIGNED
            if outcome == allocation.ASSIGNED:
                match.server, match.assigned = server, True
                server.matches.add(match.spec.match_id)
                server.idle_since = None
                log.info(
                    "match allocated",
                    extra={"match_id": match.spec.match_id, "server": server.server_id},
                )
                return server
            match.server = None
            refused.add(server.server_id)
            if outcome == allocation.FULL:
                server.reported = max(server.reported, self.policy.capacity)

    def _candidate(self, server: _Server) -> Candidate:
        return Candidate(
            server_id=server.server_id,
            node="",
            capacity=self.policy.capacity,
            count=server.count,
            ready=server.ready,
            draining=not server.member,
        )

    # ------------------------------------------------------------------ servers
    def _members(self) -> int:
        return sum(1 for s in self._servers.values() if s.member)

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    def _add_server(self, reason: StartReason) -> _Server:
        """Under the lock: start one more server."""
        self._next += 1
        server = _Server(
            f"{self.config.server_prefix}-{self._next}",
            free_port(),
            free_port(),
            RestartBudget(
                self.config.restart_initial_s,
                self.config.restart_max_s,
                max_failures=self.config.runtime.max_restarts,
            ),
        )
        self._servers[server.server_id] = server
        self.metrics.servers_started.labels(reason).inc()
        self.metrics.servers.set(self._members())
        why = {
            "minimum": "the pool's minimum",
            "buffer": f"free slots below the buffer of {self.policy.buffer}",
            "no_room": "no free slot for a match: cold start",
        }[reason]
        self._tell(
            f"pool server {server.server_id} starting on port {server.port} "
            f"({self.policy.capacity} matches; {why})",
            server=server.server_id,
            reason=reason,
        )
        server.task = asyncio.create_task(self._run_server(server), name=server.server_id)
        server.task.add_done_callback(log_failure)
        return server

    def _tell(self, line: str, **extra: str) -> None:
        log.info(line, extra=extra)
        if self.say is not None:
            self.say(line)

    async def _run_server(self, server: _Server) -> None:
        """Run one server process; restart it in place when it dies, within its budget."""
        while not (self._closing or server.stopping):
            spawned_ms = int(time.time() * 1000)
            entries = pool_server_config(
                server.server_id,
                self.policy.capacity,
                server.port,
                deployment(self.config.runtime, server.admin_port),
            )
            server.proc = await spawn_server(
                self.config.runtime, entries, f"server-{server.server_id}"
            )
            if self._closing or server.stopping:  # told to go while it was being spawned
                server.proc.send_signal(signal.SIGTERM)
                await self._await_exit(server)
                break
            if await self._await_ready(server, spawned_ms):
                server.ready = True
                if not server.matches:
                    server.idle_since = time.monotonic()
                self._changed()
                self._poke.set()
                code: int | None = await server.proc.wait()
            elif server.proc.returncode is None:  # not ready in time
                server.proc.kill()
                await server.proc.wait()
                code = None
            else:
                code = server.proc.returncode
            server.ready = False
            self._changed()
            if self._closing or server.stopping:
                break
            reason = "not ready in time" if code is None else f"exited with status {code}"
            now = time.monotonic()
            delay = server.budget.failed(now)
            if server.budget.spent(now):
                await self._give_up(server, reason)
                return
            server.restarts += 1
            self.metrics.server_restarts.inc()
            self._tell(
                f"pool server {server.server_id} {reason}; restarting it in place "
                f"(restart {server.restarts}, {len(server.matches)} match(es) restore)",
                server=server.server_id,
            )
            for match_id in list(server.matches):
                match = self._book.get(match_id)
                if match is not None and not match.status.phase.terminal:
                    await self._book.restarted(match)
            await asyncio.sleep(delay)  # backoff before the next start
        server.gone = True
        self._changed()

    async def _await_ready(self, server: _Server, spawned_ms: int) -> bool:
        """Until this process reports ready in its state hash, it exits, or time is up."""
        assert server.proc is not None
        deadline = time.monotonic() + self.config.runtime.startup_timeout_s
        key = keys.server_state(server.server_id)
        while time.monotonic() < deadline and server.proc.returncode is None:
            ready, started = await self.redis.hmget(
                key, [ServerState.READY, ServerState.STARTED_MS]
            )
            if ready in (b"1", "1") and int(started or 0) >= spawned_ms:
                return True
            await asyncio.sleep(_READY_POLL_S)
        return False

    async def _give_up(self, server: _Server, reason: str) -> None:
        server.gone = True
        self.metrics.servers_given_up.inc()
        self.metrics.servers.set(self._members())
        self._tell(
            f"pool server {server.server_id} keeps failing ({reason}); giving it up, "
            f"{len(server.matches)} match(es) fail",
            server=server.server_id,
        )
        for match_id in list(server.matches):
            match = self._book.get(match_id)
            if match is not None:
                await self._set(match, Event.LOST, reason=f"pool server {reason}")
        # Nothing will run them: a later server with this id must not restore them.
        await self.redis.delete(keys.server_matches(server.server_id))
        self._changed()
        self._poke.set()

    async def _stop_server(self, server: _Server) -> None:
        server.stopping = True
        self.metrics.servers.set(self._members())
        self._tell(f"pool server {server.server_id} idle and surplus: stopping it")
        if server.proc is not None and server.proc.returncode is None:
            server.proc.send_signal(signal.SIGTERM)

    # ------------------------------------------------------------------ maintenance
    async def _maintain(self) -> None:
        """Read what the servers record in Redis, apply the buffer policy; every
        `refresh_s`, and at once when poked (an allocation, a server ready or gone)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.config.refresh_s)
            self._poke.clear()
            try:
                await self._refresh()
                async with self._lock:
                    await self._apply_policy()
            except (RedisError, OSError) as exc:  # Redis blips: next round
                log.warning("pool maintenance failed", extra={"error": repr(exc)})

    async def _refresh(self) -> None:
        live = [s for s in self._servers.values() if s.member]
        if not live:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for server in live:
                pipe.hlen(keys.server_matches(server.server_id))
            counts = await pipe.execute()
        for server, count in zip(live, counts, strict=True):
            server.reported = int(count)
        self.metrics.free_slots.set(
            sum(max(0, self.policy.capacity - s.count) for s in live if s.ready)
        )

    async def _apply_policy(self) -> None:
        if self._closing:
            return
        members = [
            PoolMember(s.server_id, s.count, ready=s.ready, idle_since=s.idle_since)
            for s in self._servers.values()
            if s.member
        ]
        decision = plan(self.policy, members, time.monotonic(), pending=len(self._waiting))
        minimum = len(members) < self.policy.min_servers
        for _ in range(decision.start):
            self._add_server("minimum" if minimum else "buffer")
        for server_id in decision.stop:
            await self._stop_server(self._servers[server_id])
        if decision.start or decision.stop:
            self._changed()
        self.metrics.servers.set(self._members())
