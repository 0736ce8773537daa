"""`up`'s supervision of what it starts: Redis, PostgreSQL, the feed relay, the results
worker.

Each child is watched from the moment it starts. One that ends while `up` runs is
started again after an exponential backoff (`tradearena.retry.RestartBudget`), with
one console line per restart; the fifth failure within a minute stops supervision
and reports it (`failed`), and `up` then stops everything and exits non-zero.

`up` has no metrics endpoint of its own (the in-process lobby's `/metrics` belongs to
the lobby, and a cluster has no such children), so the restart counts are kept in a
small JSON status file in the data directory, `status.json`: the state of `up` and,
per child, its pid, restarts, state, last exit and probe address. It is rewritten
(atomically) on every change, for a person (`cat var/status.json`) or a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tradearena.launcher.localservices import LocalPostgres, LocalRedis, ServiceError
from tradearena.retry import RestartBudget

POLL_S = 0.2  # the postmaster is not our child: it is watched by polling its pid


class Child(Protocol):
    name: str  # in status.json and the restart lines
    probe: str | None

    @property
    def title(self) -> str:
        """For the "stopped ..." line."""

    async def start(self) -> int:
        """Start it; its pid."""

    async def ended(self) -> str:
        """Return once it has ended: how ("killed by SIGKILL", "exit status 1")."""

    async def stop(self) -> None: ...


def how_it_ended(status: int | None) -> str:
    if status is None:
        return "ended"
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-status).name}"
        return f"killed by signal {-status}"
    return f"exit status {status}"


@dataclass
class ProcessChild:
    """A `tradearena` subcommand, its output appended to `logs/<name>.log`."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    probe: str | None = None
    _proc: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)

    @property
    def title(self) -> str:
        return self.name

    async def start(self) -> int:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self._proc = await asyncio.create_subprocess_exec(
                *self.args, env=self.env, stdout=out, stderr=out
            )
        return self._proc.pid

    async def ended(self) -> str:
        assert self._proc is not None
        return how_it_ended(await self._proc.wait())

    async def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@dataclass
class RedisChild:
    redis: LocalRedis
    name: str = "redis"
    title: str = "Redis"
    probe: str | None = None

    async def start(self) -> int:
        await asyncio.to_thread(self.redis.start)  # same port and journal as before
        assert self.redis.pid is not None
        return self.redis.pid

    async def ended(self) -> str:
        return how_it_ended(await asyncio.to_thread(self.redis.wait))

    async def stop(self) -> None:
        await asyncio.to_thread(self.redis.stop)


@dataclass
class PostgresChild:
    """The postmaster is pg_ctl's daemon, not our child: watched through its pid."""

    postgres: LocalPostgres
    name: str = "postgres"
    title: str = "PostgreSQL"
    probe: str | None = None
    _pid: int | None = field(default=None, init=False, repr=False)

    async def start(self) -> int:
        await asyncio.to_thread(self.postgres.start)
        self._pid = self.postgres.pid
        if self._pid is None:
            raise ServiceError("postgres started but wrote no postmaster.pid")
        return self._pid

    async def ended(self) -> str:
        assert self._pid is not None
        while True:
            try:
                os.kill(self._pid, 0)
            except ProcessLookupError:
                return "ended"
            except PermissionError:
                pass  # alive, owned by another user
            await asyncio.sleep(POLL_S)

    async def stop(self) -> None:
        await asyncio.to_thread(self.postgres.stop)


@dataclass
class Supervisor:
    """Starts children, restarts those that end, and gives up on one that keeps ending."""

    say: Callable[[str], None]
    status_file: Path
    initial_s: float = 0.5
    max_s: float = 15.0
    max_failures: int = 5
    window_s: float = 60.0
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    state: str = "starting"
    extra: dict[str, Any] = field(default_factory=dict)
    on_restart: Callable[[str], None] = lambda name: None  # e.g. a counter, by child
    _children: list[Child] = field(default_factory=list)
    _records: dict[str, dict[str, Any]] = field(default_factory=dict)
    _watchers: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, child: Child) -> int:
        """Start `child` (an error here is a start-up failure: no retry) and watch it."""
        pid = await child.start()
        self._children.append(child)
        self._records[child.name] = {
            "pid": pid,
            "restarts": 0,
            "state": "running",
            "last_exit": None,
            "probe": child.probe,
        }
        self.write_status()
        self._watchers.append(asyncio.create_task(self._watch(child), name=f"watch-{child.name}"))
        return pid

    def set_state(self, state: str) -> None:
        self.state = state
        self.write_status()

    def write_status(self) -> None:
        body = {"state": self.state, **self.extra, "children": self._records}
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(tmp, self.status_file)

    async def _watch(self, child: Child) -> None:
        record = self._records[child.name]
        budget = RestartBudget(self.initial_s, self.max_s, self.max_failures, self.window_s)
        loop = asyncio.get_running_loop()
        while True:
            how = f"exited ({await child.ended()})"
            while True:  # until it starts again
                record.update(state="restarting", last_exit=how, pid=None)
                delay = budget.failed(loop.time())
                if budget.spent(loop.time()):
                    record["state"] = "failed"
                    self.say(
                        f"!! {child.name} failed {self.max_failures} times within "
                        f"{self.window_s:.0f} s; stopping everything"
                    )
                    self.state = "failed"
                    self.write_status()
                    self.failed.set()
                    return
                self.write_status()
                await asyncio.sleep(delay)
                try:
                    pid = await child.start()
                    break
                except (ServiceError, OSError) as exc:
                    how = f"did not start ({exc})"
                    self.say(f"!! {child.name} {how}")
            record.update(pid=pid, state="running", restarts=record["restarts"] + 1)
            self.on_restart(child.name)
            self.say(
                f"!! {child.name} {how}; restarted (restart {record['restarts']}, "
                f"after {delay:.1f} s, pid {pid})"
            )
            self.write_status()

    async def stop(self) -> None:
        """Stop watching, then stop the children in reverse start order."""
        for task in self._watchers:
            task.cancel()
        for task in self._watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._watchers.clear()
        if self.state != "failed":
            self.state = "stopping"
        for child in reversed(self._children):
            await child.stop()
            record = self._records[child.name]
            if record["state"] != "failed":
                record["state"] = "stopped"
            self.say(f"    stopped {child.title}")
        if self.state != "failed":
            self.state = "stopped"
        with contextlib.suppress(OSError):
            self.write_status()
