"""Match formation: from a claimed group of tickets to players holding an address,
a port and a match token, through the orchestration contract only.

    claim (lobby.matchmaking.queues) -> notify "match_found"
      -> a casual match: match_options.record(CASUAL) -> Orchestrator.start(MatchSpec)
      -> watch until Ready (timeout) -> sign one match token per player
      -> notify "match_ready" {address, port, url, token} -> queues.finish
    on failure, timeout or a terminal phase before Ready:
      -> Orchestrator.cancel (best effort) -> queues.requeue (priority, same
         enqueue time) -> notify "match_failed" {requeued: true}

`Matchmaker` is the loop each lobby replica runs: recover abandoned formations,
one planning round (`Queues.match_round`, safe with concurrent replicas), then
form every claimed match concurrently. The `auto` format uses the biggest move
of the last 60 minutes read from the feed relay's stream (`price_move_pct`).

Readiness is watched, never polled: `watch()` must yield the current status
first and then every change (both runtimes do); a last `status()` read at the
deadline covers a runtime that only reports changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

from opentelemetry import trace
from opentelemetry.trace import Link, Span
from prometheus_client import CollectorRegistry, Counter, Histogram

from lobby.match_options import MatchKind
from lobby.matchmaking.planner import CASUAL
from lobby.matchmaking.queues import Claim, Queues, RoundStats
from lobby.settings import FormationSettings
from tradearena import tracing
from tradearena.contracts import keys
from tradearena.contracts.feed import MalformedTickError, decode_tick
from tradearena.contracts.orchestration import MatchSpec, MatchStatus, Orchestrator
from tradearena.contracts.phases import MatchPhase
from tradearena.contracts.tracing import NOTIFICATION_FIELD
from tradearena.modes import Catalogue
from tradearena.redisconn import AnyRedis
from tradearena.tokens import Signer

log = logging.getLogger("lobby.matchmaking.formation")
_tracer = tracing.tracer("lobby.matchmaking.formation")

READY_PHASES = (MatchPhase.READY, MatchPhase.LIVE)
MOVE_WINDOW_MS = 60 * 60 * 1000


class Notifier(Protocol):
    async def __call__(self, user_id: str, kind: str, payload: dict[str, Any]) -> object: ...


class KindRecorder(Protocol):
    """Writes how a match was made (`lobby.match_options.record`) before it starts."""

    async def __call__(self, match_id: str, kind: MatchKind) -> object: ...


class FormationFailedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FormationOutcome:
    match_id: str
    state: Literal["ready", "failed"]
    status: MatchStatus | None
    reason: str | None = None
    requeued: int = 0


def match_spec(claim: Claim, catalogue: Catalogue, symbol: str) -> MatchSpec:
    p = claim.proposal
    return MatchSpec(
        match_id=claim.match_id,
        mode=p.mode,
        format=p.format,
        duration_ms=catalogue.duration_ms(p.format),
        players=p.players,
        symbol=symbol,
    )


class Formation:
    def __init__(
        self,
        orchestrator: Orchestrator,
        queues: Queues,
        signer: Signer,
        notify: Notifier,
        catalogue: Catalogue,
        settings: FormationSettings,
        record_kind: KindRecorder | None = None,
    ) -> None:
        self.record_kind = record_kind
        self.orchestrator = orchestrator
        self.queues = queues
        self.signer = signer
        self.notify = notify
        self.catalogue = catalogue
        self.settings = settings

    async def _notify_all(self, players: tuple[str, ...], kind: str, payload: Any) -> None:
        for player in players:
            body = payload(player) if callable(payload) else payload
            try:
                await self.notify(player, kind, body)
            except Exception:  # one player's notification never blocks the others
                log.exception("notification failed", extra={"player": player, "kind": kind})

    async def _watch_ready(self, match_id: str) -> MatchStatus:
        async for status in self.orchestrator.watch(match_id):
            if status.phase in READY_PHASES:
                return status
            if status.phase.terminal or status.phase is MatchPhase.CANCELLING:
                raise FormationFailedError(status.reason or f"match server {status.phase}")
        raise FormationFailedError("the runtime stopped reporting the match")

    async def wait_ready(self, match_id: str) -> MatchStatus:
        try:
            async with asyncio.timeout(self.settings.ready_timeout_s):
                return await self._watch_ready(match_id)
        except TimeoutError:
            status = await self.orchestrator.status(match_id)
            if status is not None and status.phase in READY_PHASES:
                return status
            raise FormationFailedError("startup_timeout") from None

    async def form(self, claim: Claim) -> FormationOutcome:
        """Form one claimed match. Traced: the match's trace starts here (`match.formation`,
        linked to each player's journey), and each player's journey gets `queue.wait`
        (from the join to the match's outcome, linked to the match)."""
        spec = match_spec(claim, self.catalogue, self.settings.symbol)
        attributes = {"match.id": spec.match_id, "match.mode": spec.mode}
        span = _tracer.start_span(
            "match.formation",
            context=tracing.ROOT,
            links=tracing.links_to(
                (t.traceparent, {"player": t.player}) for t in claim.proposal.tickets
            ),
            attributes={
                **attributes,
                "match.format": spec.format,
                "match.players": len(spec.players),
            },
        )
        spec = dataclasses.replace(spec, traceparent=tracing.traceparent_of(span))
        journeys = {
            t.player: _tracer.start_span(
                "queue.wait",
                context=tracing.context_of(t.traceparent),
                start_time=t.enqueued_at_ms * 1_000_000,
                links=[Link(span.get_span_context(), {"match.id": spec.match_id})],
                attributes={**attributes, "player": t.player},
            )
            for t in claim.proposal.tickets
            if t.traceparent
        }
        try:
            with trace.use_span(span, end_on_exit=False):
                outcome = await self._form(spec, journeys, claim.proposal.queue)
            span.set_attribute("formation.outcome", outcome.state)
            for journey in journeys.values():
                journey.set_attribute("formation.outcome", outcome.state)
            return outcome
        finally:
            span.end()
            for journey in journeys.values():
                journey.end()

    async def _form(
        self, spec: MatchSpec, journeys: dict[str, Span], queue: str
    ) -> FormationOutcome:
        match_id, players = spec.match_id, spec.players
        base = {
            "match_id": match_id,
            "mode": spec.mode,
            "format": spec.format,
            "symbol": spec.symbol,
        }
        await self._notify_all(players, "match_found", {**base, "players": list(players)})
        try:
            if queue == CASUAL:  # unrated: the row must exist before the server does
                if self.record_kind is None:
                    raise FormationFailedError("casual matches need a match options store")
                await self.record_kind(match_id, MatchKind.CASUAL)
            await self.orchestrator.start(spec)
            status = await self.wait_ready(match_id)
            if status.address is None or status.port is None:
                raise FormationFailedError("the match server reported no address")
        except Exception as exc:
            reason = exc.reason if isinstance(exc, FormationFailedError) else repr(exc)
            return await self._fail(spec, reason)
        ttl = spec.duration_ms // 1000 + self.settings.match_token_margin_s
        expires_at = int(time.time()) + ttl
        still_ours = await self.queues.finish(
            match_id,
            {
                **base,
                "state": "ready",
                "address": status.address,
                "port": status.port,
                "at": int(time.time() * 1000),
            },
        )
        if not still_ours:  # too slow: the players were requeued as an abandoned formation
            with contextlib.suppress(Exception):
                await self.orchestrator.cancel(match_id, "formation abandoned")
            return FormationOutcome(match_id, "failed", status, "formation abandoned")

        def ready(player: str) -> dict[str, Any]:
            return {
                **base,
                "address": status.address,
                "port": status.port,
                "url": status.url,
                "token": self.signer.match_token(match_id, player, ttl),
                "token_expires_at": expires_at,
                # The journey goes on in the match server's connect (Socket.IO auth).
                NOTIFICATION_FIELD: tracing.traceparent_of(journeys[player])
                if player in journeys
                else None,
            }

        await self._notify_all(players, "match_ready", ready)
        log.info("match ready", extra={"match_id": match_id, "url": status.url})
        return FormationOutcome(match_id, "ready", status)

    async def _fail(self, spec: MatchSpec, reason: str) -> FormationOutcome:
        log.warning("formation failed", extra={"match_id": spec.match_id, "reason": reason})
        with contextlib.suppress(Exception):
            await self.orchestrator.cancel(spec.match_id, f"formation failed: {reason}")
        requeued = await self.queues.requeue(spec.match_id)
        await self._notify_all(
            spec.players,
            "match_failed",
            {"match_id": spec.match_id, "reason": reason, "requeued": requeued >= 0},
        )
        status = None
        with contextlib.suppress(Exception):
            status = await self.orchestrator.status(spec.match_id)
        return FormationOutcome(spec.match_id, "failed", status, reason, max(requeued, 0))


def move_pct(prices: list[Decimal]) -> Decimal:
    """Biggest move of a window: (high - low) / low, in percent; 0 without prices."""
    positive = [p for p in prices if p > 0]
    if not positive:
        return Decimal(0)
    low, high = min(positive), max(positive)
    return (high - low) / low * 100


async def price_move_pct(redis: AnyRedis, symbol: str, now_ms: int) -> Decimal:
    """The move of the last 60 minutes on the feed relay's stream (ids are tick times)."""
    entries: Any = await redis.xrange(keys.feed_stream(symbol), min=str(now_ms - MOVE_WINDOW_MS))
    prices = []
    for entry_id, fields in entries:
        with contextlib.suppress(MalformedTickError):
            prices.append(decode_tick(symbol, entry_id, fields).price)
    return move_pct(prices)


class MatchmakingMetrics:
    """Matchmaking metrics, on a given registry (the lobby's) or a fresh one."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.rounds = Histogram(
            "lobby_matchmaking_round_seconds",
            "One planning round: read, plan, claim",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.claims = Counter(
            "lobby_matchmaking_claims_total",
            "Matches claimed from the queues",
            ["mode"],
            registry=r,
        )
        self.conflicts = Counter(
            "lobby_matchmaking_claim_conflicts_total",
            "Proposals refused because a ticket was gone (another replica, a leave)",
            registry=r,
        )
        self.wait = Histogram(
            "lobby_matchmaking_wait_seconds",
            "Queue time from join to claim, per player",
            ["mode"],
            buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1200),
            registry=r,
        )
        self.formations = Counter(
            "lobby_matchmaking_formations_total",
            "Formations by outcome (ready, failed)",
            ["outcome"],
            registry=r,
        )
        self.party_tickets = Counter(
            "lobby_party_tickets_matched_total",
            "Party tickets claimed into a match (each a whole party)",
            registry=r,
        )
        self.join_refusals = Counter(
            "lobby_queue_join_refusals_total",
            "Queue joins refused, by code (already_queued, already_in_match)",
            ["code"],
            registry=r,
        )


class Matchmaker:
    """The matching loop of one lobby replica."""

    def __init__(
        self,
        queues: Queues,
        formation: Formation,
        move: Callable[[], Awaitable[Decimal]] | None = None,
        metrics: MatchmakingMetrics | None = None,
    ) -> None:
        self.queues = queues
        self.formation = formation
        self.metrics = metrics or MatchmakingMetrics()
        self.move = move or self._feed_move
        self.stopping = asyncio.Event()
        self.wake = asyncio.Event()
        self.tasks: set[asyncio.Task[FormationOutcome]] = set()
        self.outcomes: list[FormationOutcome] = []
        self._move_cache: tuple[float, Decimal] | None = None
        self._slots = asyncio.Semaphore(formation.settings.max_concurrent_formations)

    async def _feed_move(self) -> Decimal:
        now = time.monotonic()
        if self._move_cache and now - self._move_cache[0] < self.formation.settings.move_cache_s:
            return self._move_cache[1]
        value = await price_move_pct(
            self.queues.redis, self.formation.settings.symbol, int(time.time() * 1000)
        )
        self._move_cache = (now, value)
        return value

    async def _form(self, claim: Claim) -> FormationOutcome:
        async with self._slots:
            try:
                outcome = await self.formation.form(claim)
            except Exception as exc:  # Redis away: the forming entry stays, recovered later
                log.exception("formation crashed", extra={"match_id": claim.match_id})
                outcome = FormationOutcome(claim.match_id, "failed", None, repr(exc))
        self.metrics.formations.labels(outcome.state).inc()
        self.outcomes.append(outcome)
        del self.outcomes[:-1000]
        return outcome

    def form_claimed(self, claim: Claim) -> asyncio.Task[FormationOutcome]:
        """Form a match claimed outside the planner (a private match), like the others."""
        self.metrics.claims.labels(claim.proposal.mode).inc()
        task = asyncio.create_task(self._form(claim))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def round(self) -> list[Claim]:
        stale_ms = int(self.formation.settings.stale_forming_s * 1000)
        await self.queues.recover_stale(stale_ms)
        stats = RoundStats()
        t0 = time.perf_counter()
        claims = await self.queues.match_round(await self.move(), stats=stats)
        self.metrics.rounds.observe(time.perf_counter() - t0)
        self.metrics.conflicts.inc(stats.conflicts)
        for claim in claims:
            self.metrics.claims.labels(claim.proposal.mode).inc()
            self.metrics.party_tickets.inc(sum(1 for t in claim.proposal.tickets if t.party))
            for t in claim.proposal.tickets:
                waited = t.waited_ms(claim.claimed_at_ms) / 1000
                self.metrics.wait.labels(claim.proposal.mode).observe(waited)
            task = asyncio.create_task(self._form(claim))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return claims

    async def run(self) -> None:
        interval = self.queues.settings.match_interval_ms / 1000
        while not self.stopping.is_set():
            try:
                await self.round()
            except Exception:
                log.exception("matchmaking round failed")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self.wake.wait()

    async def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
