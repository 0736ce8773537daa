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
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tradearena.contracts import keys
from tradearena.contracts.orchestration import MatchSpec, MatchStatus, Scheme
from tradearena.contracts.phases import MatchPhase
from tradearena.orchestration.phases import Event, TransitionError, server_event, transition

log = logging.getLogger(__name__)

_BLOCK_MS = 1000  # one blocking read of the phase streams (a wake ends it sooner)


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
    events: one task and one blocking XREAD over every stream at once (one Redis
    connection however many matches run). A match is read from the start of its
    stream; adding one wakes the read at once (an entry on the runtime's own wake
    stream), so a match's Ready is seen as soon as its server writes it. Events of one
    match are handled in order; Redis blips are logged and reading resumes where it
    stopped."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.wake_key = keys.runtime_wake(uuid.uuid4().hex)
        self._last: dict[str, str] = {}  # stream -> id of the last entry read
        self._handlers: dict[str, Handler] = {}  # stream -> its match's handler
        self._wake_last = "$"
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def follow(self, match_id: str, on_event: Handler) -> None:
        stream = keys.match_phases(match_id)
        self._last.setdefault(stream, "0-0")
        self._handlers[stream] = on_event
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="phase-follower")
            self._task.add_done_callback(log_failure)
        try:
            await self._wake()
        except (RedisError, OSError) as exc:  # the next read (within a second) has it
            log.warning("phase reader not woken", extra={"match_id": match_id, "error": repr(exc)})

    def unfollow(self, match_id: str) -> None:
        stream = keys.match_phases(match_id)
        self._handlers.pop(stream, None)
        self._last.pop(stream, None)

    async def close(self) -> None:
        self._closed = True
        if self._task is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._wake()
        # A cancel can be lost inside the Redis client's blocking read: the flag ends
        # the loop after that read in any case.
        done, _ = await asyncio.wait({self._task}, timeout=_BLOCK_MS / 1000 + 1)
        if not done:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self.wake_key)

    async def _wake(self) -> None:
        await self.redis.xadd(self.wake_key, {"wake": "1"}, maxlen=100, approximate=True)

    async def _run(self) -> None:
        while not self._closed:
            streams: dict[Any, Any] = {self.wake_key: self._wake_last, **self._last}
            try:
                reply: Any = await self.redis.xread(streams, block=_BLOCK_MS, count=100)
            except (RedisError, OSError) as exc:
                log.warning("phase stream read failed", extra={"error": repr(exc)})
                await asyncio.sleep(0.5)
                continue
            for raw_key, entries in reply or []:
                key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
                if key == self.wake_key:
                    self._wake_last = _text(entries[-1][0])
                    continue
                for entry_id, fields in entries:
                    handler = self._handlers.get(key)
                    if handler is None:  # unfollowed meanwhile
                        break
                    self._last[key] = _text(entry_id)
                    raw = fields.get(b"phase") or fields.get("phase")
                    event = server_event(None if raw is None else _text(raw))
                    if event is None:
                        continue
                    try:
                        await handler(event)
                    except Exception:  # one match's handler must not stop the others
                        log.exception("phase handler failed", extra={"stream": key})


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def log_failure(task: asyncio.Task[Any]) -> None:
    """A done-callback: log a background task that died of an exception."""
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed: %s", task.get_name(), exc_info=task.exception())
