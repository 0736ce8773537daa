"""What both local runtimes share: each match's phase, moved by the shared phase
machine, its status history for `watch`, and following the match server's own
phase reports on its Redis stream.

A runtime keeps one `Tracked` per match in a `MatchBook`, feeds it events (its own:
created, failed...; the server's: `PhaseFollower`) and says where the match is
served (`Placement`); the book turns that into `MatchStatus`es, in order, for
`status`, `watch` and `list_active` of the `Orchestrator` contract.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Generic, TypeVar

from tradearena.contracts.orchestration import MatchSpec, MatchStatus, Scheme
from tradearena.contracts.phases import MatchPhase
from tradearena.orchestration.phases import Event, TransitionError, server_event, transition
from tradearena.orchestration.phasewatch import PhaseWatch
from tradearena.redisconn import AnyRedis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """Where a match is served: players' address and port (given only while the match
    is reachable), the scheme, and details for operators (its admin URL...)."""

    address: str
    port: int
    scheme: Scheme = "http"
    detail: dict[str, str] = field(default_factory=dict)


@dataclass
class Tracked:
    """One match as a runtime follows it."""

    spec: MatchSpec
    status: MatchStatus
    retries_left: int = 0
    restarts: int = 0
    cancel_reason: str | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    history: list[MatchStatus] = field(default_factory=list)


T = TypeVar("T", bound=Tracked)


def _longer_than(history: list[MatchStatus], n: int) -> bool:
    return len(history) > n


class MatchBook(Generic[T]):
    """Every match of one runtime, with its status history."""

    def __init__(self, on_change: Callable[[MatchSpec, MatchStatus], None] | None = None) -> None:
        self.on_change = on_change
        self.matches: dict[str, T] = {}

    def add(self, tracked: T) -> None:
        tracked.history.append(tracked.status)
        self.matches[tracked.spec.match_id] = tracked

    def get(self, match_id: str) -> T | None:
        return self.matches.get(match_id)

    def status(self, match_id: str) -> MatchStatus | None:
        tracked = self.matches.get(match_id)
        return None if tracked is None else tracked.status

    def active(self) -> list[MatchStatus]:
        return [t.status for t in self.matches.values() if not t.status.phase.terminal]

    async def watch(self, match_id: str) -> AsyncIterator[MatchStatus]:
        tracked = self.matches.get(match_id)
        if tracked is None:
            return
        seen = 0
        while True:
            async with tracked.changed:
                await tracked.changed.wait_for(partial(_longer_than, tracked.history, seen))
                fresh = tracked.history[seen:]
            seen += len(fresh)
            for status in fresh:
                yield status
                if status.phase.terminal:
                    return

    async def apply(
        self,
        tracked: T,
        event: Event,
        placement: Placement | None,
        reason: str | None = None,
    ) -> None:
        """Move the match by `event` through the phase machine and publish its new
        status; an event the machine refuses is logged and ignored."""
        try:
            decision = transition(
                tracked.status.phase,
                event,
                retries_left=tracked.retries_left,
                started=tracked.status.phase is MatchPhase.LIVE,
            )
        except TransitionError:
            log.warning(
                "ignored event",
                extra={
                    "match_id": tracked.spec.match_id,
                    "phase": str(tracked.status.phase),
                    "event": str(event),
                },
            )
            return
        reachable = decision.phase.reachable and placement is not None
        status = replace(
            tracked.status,
            phase=decision.phase,
            address=placement.address if reachable and placement else None,
            port=placement.port if reachable and placement else None,
            scheme=placement.scheme if placement is not None else tracked.status.scheme,
            reason=reason,
            restarts=tracked.restarts,
            detail=dict(placement.detail) if placement is not None else tracked.status.detail,
        )
        if status == tracked.status:
            return
        await self.publish(tracked, status)
        log.info(
            "match phase",
            extra={"match_id": tracked.spec.match_id, "phase": str(status.phase), "reason": reason},
        )

    async def restarted(self, tracked: T) -> None:
        """Count a restart in place of the match's server (the phase does not change)."""
        tracked.restarts += 1
        await self.publish(tracked, replace(tracked.status, restarts=tracked.restarts))

    async def publish(self, tracked: T, status: MatchStatus) -> None:
        if self.on_change is not None:
            self.on_change(tracked.spec, status)
        tracked.status = status
        async with tracked.changed:
            tracked.history.append(status)
            tracked.changed.notify_all()

    @staticmethod
    async def left(tracked: Tracked, *phases: MatchPhase) -> None:
        """Wait until the match is in none of `phases`."""
        async with tracked.changed:
            await tracked.changed.wait_for(lambda: tracked.status.phase not in phases)


Handler = Callable[[Event], Awaitable[None]]


class PhaseFollower:
    """Every followed match's phase reports, from its Redis stream, as phase-machine
    events, through one reader (`PhaseWatch`: one blocking XREAD over every stream on
    one Redis, per-slot reads on a cluster). A match is read from the start of its
    stream; adding one wakes the reader at once, so a match's Ready is seen as soon as
    its server writes it. Events of one match are handled in order; Redis blips are
    logged and reading resumes where it stopped."""

    def __init__(self, redis: AnyRedis) -> None:
        self.redis = redis
        self.watch = PhaseWatch(redis, uuid.uuid4().hex)

    async def follow(self, match_id: str, on_event: Handler) -> None:
        async def on_phase(phase: str | None) -> bool:
            event = server_event(phase)
            if event is not None:
                await on_event(event)
            return False  # followed until unfollowed

        self.watch.follow(match_id, on_phase)

    def unfollow(self, match_id: str) -> None:
        self.watch.unfollow(match_id)

    async def close(self) -> None:
        await self.watch.close()


def log_failure(task: asyncio.Task[Any]) -> None:
    """A done-callback: log a background task that died of an exception."""
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed: %s", task.get_name(), exc_info=task.exception())
