"""An Orchestrator over real local processes, for formation tests.

Each match runs `fake_matchserver.py` as a child process; its stdout says when
it is ready and on which port, its exit is a failure (or the end of a cancel).
Phases follow `tradearena.orchestration.phases.transition`. `watch()` yields the
current status first, then every change, until a terminal phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from tradearena.contracts.orchestration import MatchSpec, MatchStatus
from tradearena.contracts.phases import MatchPhase
from tradearena.orchestration.phases import Event, transition

SCRIPT = Path(__file__).with_name("fake_matchserver.py")


@dataclass
class _Match:
    spec: MatchSpec
    status: MatchStatus
    proc: asyncio.subprocess.Process | None = None
    watchers: list[asyncio.Queue[MatchStatus]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None


class ProcessOrchestrator:
    def __init__(self) -> None:
        # How the server of a match behaves (ok, fail, hang), keyed by its first player.
        self.behaviours: dict[str, str] = {}
        self.matches: dict[str, _Match] = {}
        self.started: list[MatchSpec] = []

    def _set(self, m: _Match, event: Event, **changes: object) -> None:
        decision = transition(m.status.phase, event)
        m.status = replace(m.status, phase=decision.phase, **changes)  # type: ignore[arg-type]
        for q in m.watchers:
            q.put_nowait(m.status)

    async def start(self, spec: MatchSpec) -> None:
        m = _Match(spec, MatchStatus(spec.match_id, MatchPhase.PENDING))
        self.matches[spec.match_id] = m
        self.started.append(spec)
        m.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",
            str(SCRIPT),
            spec.match_id,
            self.behaviours.get(spec.players[0], "ok"),
            stdout=asyncio.subprocess.PIPE,
        )
        self._set(m, Event.CREATED, detail={"pid": str(m.proc.pid)})
        m.reader = asyncio.create_task(self._read(m))

    async def _read(self, m: _Match) -> None:
        assert m.proc is not None and m.proc.stdout is not None
        async for line in m.proc.stdout:
            word, _, rest = line.decode().strip().partition(" ")
            if word == "READY" and m.status.phase is MatchPhase.CREATING:
                self._set(m, Event.READY, address="127.0.0.1", port=int(rest))
        code = await m.proc.wait()
        if m.status.phase is MatchPhase.CANCELLING:
            self._set(m, Event.STOPPED)
        elif not m.status.phase.terminal:
            self._set(m, Event.FAILED, reason=f"exit status {code}")

    async def status(self, match_id: str) -> MatchStatus | None:
        m = self.matches.get(match_id)
        return None if m is None else m.status

    async def watch(self, match_id: str) -> AsyncIterator[MatchStatus]:
        m = self.matches[match_id]
        q: asyncio.Queue[MatchStatus] = asyncio.Queue()
        m.watchers.append(q)
        try:
            status = m.status
            yield status
            while not status.phase.terminal:
                status = await q.get()
                yield status
        finally:
            m.watchers.remove(q)

    async def cancel(self, match_id: str, reason: str) -> None:
        m = self.matches.get(match_id)
        if m is None or m.status.phase.terminal or m.status.phase is MatchPhase.CANCELLING:
            return
        self._set(m, Event.CANCEL, reason=reason)
        if m.proc is not None and m.proc.returncode is None:
            m.proc.terminate()

    async def list_active(self) -> list[MatchStatus]:
        return [m.status for m in self.matches.values() if not m.status.phase.terminal]

    async def close(self) -> None:
        for m in self.matches.values():
            if m.proc is not None and m.proc.returncode is None:
                m.proc.kill()
                await m.proc.wait()
            if m.reader is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await m.reader
