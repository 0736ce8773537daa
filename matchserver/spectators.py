"""Spectators of the matches a server hosts: admission, the delayed frames, the count
(docs/matchserver.md, "Spectators").

Players keep priority:

- a spectator's frames go through a frame writer of their own (never the players'),
  `spectate` conflated for a spectator that falls behind like `tick` for a player;
- a match's frame is made once per `frame_ms` for all its spectators, after the
  players' events of that loop turn (the frame task yields first), and skipped while
  the server is *loaded*: its event loop ran a timer later than
  `spectator_lag_limit_ms` recently (`LoopLag`, a decaying maximum);
- a new spectator is refused with `server_busy` while the server is loaded or the
  process has `max_spectators` already, and with `spectators_full` at the match's cap.

A match's delayed view (matchserver.engine.spectate) is built when its first
spectator connects (replaying the log held in memory up to `now - delay_ms`) and
dropped when the last leaves: a match nobody watches costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from matchserver.broadcast import FrameWriter
from matchserver.engine.match import Match
from matchserver.engine.spectate import DelayedView
from matchserver.metrics import MatchMetrics
from matchserver.presence import Presence
from tradearena.contracts.pool import MatchPresence
from tradearena.contracts.spectate import SERVER_BUSY, SPECTATE_EVENT, SPECTATORS_FULL
from tradearena.modes import SpectateRules

log = logging.getLogger(__name__)

LAG_SAMPLE_S = 0.05
LAG_DECAY = 0.8  # per sample: a spike is forgotten within about a second
CATCH_UP_STEP = 500  # log entries applied to a delayed view between two turns of the loop


class LoopLag:
    """How late the event loop runs a timer: sampled every LAG_SAMPLE_S, kept as a
    decaying maximum (ms), so one spike counts for about a second."""

    def __init__(self, on_sample: Callable[[float], None] | None = None) -> None:
        self.lag_ms = 0.0
        self._on_sample = on_sample
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(LAG_SAMPLE_S)
            late_ms = max(0.0, (time.monotonic() - started - LAG_SAMPLE_S) * 1000)
            self.lag_ms = max(late_ms, self.lag_ms * LAG_DECAY)
            if self._on_sample is not None:
                self._on_sample(self.lag_ms)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class SpectatorGate:
    """The process's side of admission: its load and its spectators over every match."""

    def __init__(self, max_spectators: int, lag_limit_ms: int, lag: LoopLag) -> None:
        self.max_spectators = max_spectators
        self.lag_limit_ms = lag_limit_ms
        self.lag = lag
        self.connected = 0

    @property
    def loaded(self) -> bool:
        return self.lag.lag_ms > self.lag_limit_ms

    def refusal(self) -> str | None:
        """Why no new spectator is taken by this process now (None: one is)."""
        if self.loaded or self.connected >= self.max_spectators:
            return SERVER_BUSY
        return None


class LiveMatch(Protocol):
    """What the spectators of a match read of it: the live engine's log, header and clock
    (never its state: everything they see comes from the delayed view)."""

    @property
    def match(self) -> Match: ...


class MatchSpectators:
    """The spectators of one hosted match."""

    def __init__(
        self,
        live: LiveMatch,
        rules: SpectateRules,
        symbol: str,
        writer: FrameWriter,
        gate: SpectatorGate,
        metrics: MatchMetrics,
        count_writer: Callable[[int], Awaitable[None]],
        clock: Callable[[], int],
        namespace: str,
    ) -> None:
        self.live = live
        self.rules = rules
        self.symbol = symbol
        self.writer = writer
        self.gate = gate
        self.metrics = metrics
        self.clock = clock
        self.namespace = namespace
        self.sids: dict[str, str] = {}  # sid -> user id
        self.view: DelayedView | None = None
        self.ended = asyncio.Event()  # the last frame (the delayed view's final phase) went out
        self._task: asyncio.Task[None] | None = None
        match_id = live.match.match_id
        self._count = Presence(
            lambda n, _: count_writer(n), MatchPresence.INTERVAL_MS, label=f"{match_id}:spectators"
        )

    def __len__(self) -> int:
        return len(self.sids)

    def refusal(self) -> str | None:
        """Why this match takes no new spectator now (None: it does)."""
        if len(self.sids) >= self.rules.cap:
            return SPECTATORS_FULL
        return self.gate.refusal()

    def join(self, sid: str, user: str) -> None:
        if sid in self.sids:
            return
        self.sids[sid] = user
        self.gate.connected += 1
        self._count.update(len(self.sids), 0)
        if self._task is None:
            self._task = asyncio.create_task(
                self._frames(), name=f"spectate:{self.live.match.match_id}"
            )

    def leave(self, sid: str) -> None:
        if self.sids.pop(sid, None) is None:
            return
        self.gate.connected -= 1
        self.writer.remove(sid)
        self._count.update(len(self.sids), 0)

    async def delayed(self) -> DelayedView:
        """The delayed view brought to now - delay_ms. Built on first use, and brought
        up in slices of CATCH_UP_STEP entries with the event loop free between them:
        a late first spectator of a long match never stalls the players."""
        live = self.live.match
        view = self.view
        if view is None:
            view = self.view = DelayedView(live.header(), self.rules.delay_ms, self.symbol)
            started = time.perf_counter()
            await self._catch_up(view)
            log.info(
                "delayed view built",
                extra={
                    "match_id": live.match_id,
                    "entries": view.fed,
                    "seconds": round(time.perf_counter() - started, 3),
                },
            )
        await self._catch_up(view)
        return view

    async def _catch_up(self, view: DelayedView) -> None:
        live = self.live.match
        # Not a wait for a condition: the loop's other work runs between two slices.
        while not view.catch_up(live.log, self.clock(), live.now, CATCH_UP_STEP):  # noqa: ASYNC110
            await asyncio.sleep(0)

    async def sync(self) -> dict[str, Any]:
        view = await self.delayed()
        return view.sync(len(self.sids))

    async def _frames(self) -> None:
        """A frame every frame_ms while anyone watches; the last once the delayed view's
        match is over. The view is dropped when nobody watches any more."""
        period = self.rules.frame_ms / 1000
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while self.sids:
                await asyncio.sleep(max(0.0, due - loop.time()))
                due += period
                if due < loop.time():  # fell behind by whole frames: skip them
                    due = loop.time() + period
                await asyncio.sleep(0)  # what the players' side has ready goes first
                if not self.sids:
                    break
                if self.gate.loaded:
                    self.metrics.spectator_frames_skipped.inc()
                    continue
                view = await self.delayed()
                frame = view.view(len(self.sids))
                sids = list(self.sids)
                self.writer.send(sids, self.namespace, SPECTATE_EVENT, frame)
                self.metrics.spectator_frames.inc(len(sids))
                if view.over:
                    self.ended.set()
                    break
        except Exception:  # a spectator's view must never hurt the match
            log.exception("spectator frames stopped", extra={"match_id": self.live.match.match_id})
        finally:
            self._task = None
            if not self.sids:
                self.view = None

    async def wait_ended(self, timeout_s: float) -> None:
        """Until the spectators got the final frame (if any watch), at most `timeout_s`."""
        if not self.sids or self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), timeout_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.gate.connected -= len(self.sids)
        self.sids.clear()
        await self._count.close()
