"""The local-process runtime: one `tradearena matchserver` child process per match.

Used by the embedded default (`tradearena up`) and by tests. Phases follow the
shared phase machine; the match server reports Ready/Live/Finished on its Redis
phase stream, which this runtime watches (XREAD BLOCK, no polling), and the
process exit code covers crashes. A crash before the match is live starts a
fresh process (bounded retries); a crash after it restarts the same match in
place, on the same port, and the server restores itself from Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from opentelemetry.trace import Tracer

from tradearena import tracing
from tradearena.contracts import keys
from tradearena.contracts.orchestration import MatchSpec, MatchStatus
from tradearena.contracts.phases import MatchPhase
from tradearena.contracts.serverconfig import (
    Entry,
    FilePath,
    SecretRef,
    ServerDeployment,
    TlsFiles,
    env_name,
    server_config,
)
from tradearena.contracts.tracing import SERVICE_LOCAL_RUNTIME
from tradearena.launcher.localservices import free_port
from tradearena.launcher.scrape_targets import scrape_address
from tradearena.launcher.tracking import MatchBook, PhaseFollower, Placement, Tracked
from tradearena.orchestration.phases import Event
from tradearena.redisconn import AnyRedis

log = logging.getLogger(__name__)


def runtime_tracer(name: str) -> Tracer:
    """The local runtimes' tracer: their spans are the service `tradearena-local-runtime`,
    though `up` runs them in the lobby's process."""
    return tracing.tracer(name, service=SERVICE_LOCAL_RUNTIME)


@dataclass(frozen=True)
class LocalRuntimeConfig:
    redis_url: str
    public_key_file: Path
    log_dir: Path
    advertise_host: str = "127.0.0.1"  # what players are told to connect to
    bind_host: str = "127.0.0.1"
    feed_source: str = "relay"
    cors_origins: tuple[str, ...] = ()  # the lobby's origin(s): its web client connects
    startup_timeout_s: float = 30
    max_retries: int = 2
    max_restarts: int = 5
    extra_env: dict[str, str] = field(default_factory=dict)
    # TLS on every server's players' port (advertised as https://advertise_host:port,
    # so advertise_host must be a name the certificate covers); None: plaintext.
    tls: TlsFiles | None = None
    command: tuple[str, ...] = (str(Path(sys.executable).parent / "tradearena"), "matchserver")


def deployment(config: LocalRuntimeConfig, admin_port: int) -> ServerDeployment:
    """What every local match server is given, dedicated or pool."""
    return ServerDeployment(
        host=config.bind_host,
        redis=config.redis_url,
        verify_key=str(config.public_key_file),
        feed_source=config.feed_source,
        cors_origins=config.cors_origins,
        admin_port=admin_port,
        tls=config.tls,
    )


def placement_of(
    config: LocalRuntimeConfig, port: int, admin_port: int, **detail: str
) -> Placement:
    """Where players reach a local server, and its admin address."""
    return Placement(
        config.advertise_host,
        port,
        deployment(config, admin_port).scheme,
        {"admin": f"http://{config.bind_host}:{admin_port}", **detail},
    )


def server_env(config: LocalRuntimeConfig, entries: list[Entry]) -> dict[str, str]:
    """A server's settings entries as the environment of a local process."""
    env = dict(os.environ)
    for entry in entries:
        if isinstance(entry, SecretRef):  # a local process has no secret store
            raise TypeError(f"{entry.field}: a secret reference cannot run locally")
        env[env_name(entry.field)] = entry.path if isinstance(entry, FilePath) else entry.value
    env.update(config.extra_env)
    return env


async def spawn_server(
    config: LocalRuntimeConfig, entries: list[Entry], log_name: str
) -> asyncio.subprocess.Process:
    """Start `tradearena matchserver` with these settings, its output to `<log_name>.log`."""
    config.log_dir.mkdir(parents=True, exist_ok=True)
    out = (config.log_dir / f"{log_name}.log").open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            *config.command, env=server_env(config, entries), stdout=out, stderr=out
        )
    finally:
        out.close()


@dataclass
class _Managed(Tracked):
    port: int = 0
    admin_port: int = field(default_factory=free_port)  # /status and /metrics, not players'
    proc: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None


class LocalProcessOrchestrator:
    def __init__(
        self,
        config: LocalRuntimeConfig,
        redis: AnyRedis,
        on_change: Callable[[MatchSpec, MatchStatus], None] | None = None,
    ) -> None:
        self.config = config
        self.redis = redis
        self._book: MatchBook[_Managed] = MatchBook(on_change)
        self._phases = PhaseFollower(redis)
        self._closing = False

    @property
    def _matches(self) -> dict[str, _Managed]:
        return self._book.matches

    def metrics_addresses(self) -> list[str]:
        """host:port of each running match server's admin port (/metrics)."""
        return [
            scrape_address(self.config.bind_host, m.admin_port)
            for m in self._matches.values()
            if m.proc is not None and m.proc.returncode is None
        ]

    # ------------------------------------------------------------------ contract
    async def start(self, spec: MatchSpec) -> None:
        if spec.match_id in self._matches:
            return  # idempotent: one server per match, never two
        managed = _Managed(
            spec,
            MatchStatus(spec.match_id, MatchPhase.PENDING),
            retries_left=self.config.max_retries,
            port=free_port(),
        )
        self._book.add(managed)
        managed.task = asyncio.create_task(self._supervise(managed), name=f"match-{spec.match_id}")

    async def status(self, match_id: str) -> MatchStatus | None:
        return self._book.status(match_id)

    def watch(self, match_id: str) -> AsyncIterator[MatchStatus]:
        return self._book.watch(match_id)

    async def cancel(self, match_id: str, reason: str) -> None:
        managed = self._matches.get(match_id)
        if managed is None or managed.status.phase.terminal:
            return
        managed.cancel_reason = reason
        await self._set(managed, Event.CANCEL, reason=reason)
        await self.redis.set(keys.match_cancel(match_id), reason, ex=24 * 3600)
        if managed.proc is not None and managed.proc.returncode is None:
            managed.proc.send_signal(signal.SIGTERM)

    async def list_active(self) -> list[MatchStatus]:
        return self._book.active()

    async def close(self) -> None:
        """Stop every server (SIGTERM: they settle and publish), then the supervisors."""
        self._closing = True
        for managed in self._matches.values():
            if managed.proc is not None and managed.proc.returncode is None:
                managed.proc.send_signal(signal.SIGTERM)
        for managed in self._matches.values():
            if managed.proc is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(managed.proc.wait(), 15)
                if managed.proc.returncode is None:
                    managed.proc.kill()
            if managed.task is not None:
                managed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await managed.task
        await self._phases.close()

    # ------------------------------------------------------------------ internals
    async def _set(self, managed: _Managed, event: Event, reason: str | None = None) -> None:
        placement = placement_of(self.config, managed.port, managed.admin_port)
        await self._book.apply(managed, event, placement, reason)

    async def _spawn(self, managed: _Managed) -> asyncio.subprocess.Process:
        cfg = self.config
        spec = managed.spec
        with runtime_tracer(__name__).start_as_current_span(
            "runtime.spawn",
            context=tracing.context_of(spec.traceparent),
            attributes={"match.id": spec.match_id, "server.port": managed.port},
        ):
            # The server's match span is a child of this one.
            spec = replace(spec, traceparent=tracing.current_traceparent() or spec.traceparent)
            entries = server_config(spec, managed.port, deployment(cfg, managed.admin_port))
            return await spawn_server(cfg, entries, spec.match_id)

    async def _supervise(self, managed: _Managed) -> None:
        match_id = managed.spec.match_id
        await self._phases.follow(match_id, partial(self._set, managed))
        try:
            while not managed.status.phase.terminal:
                managed.proc = await self._spawn(managed)
                if managed.status.phase is MatchPhase.PENDING:
                    await self._set(managed, Event.CREATED)
                code = await self._wait_exit(managed)
                if managed.status.phase.terminal:
                    break
                if code == 0 or managed.status.phase is MatchPhase.CANCELLING:
                    await self._set(
                        managed, Event.STOPPED if managed.cancel_reason else Event.FINISHED
                    )
                    break
                reason = "startup timeout" if code is None else f"exited with status {code}"
                live = managed.status.phase is MatchPhase.LIVE
                if self._closing:
                    break
                if live and managed.restarts < self.config.max_restarts:
                    await self._book.restarted(managed)  # in place: it restores from Redis
                    log.warning(
                        "match server crashed, restarting",
                        extra={"match_id": match_id, "reason": reason},
                    )
                    continue
                if live:  # restarts in place spent
                    event = Event.LOST
                else:
                    event = Event.STARTUP_TIMEOUT if code is None else Event.FAILED
                await self._set(managed, event, reason=reason)
                if managed.status.phase is MatchPhase.PENDING:  # retry with a fresh process
                    managed.retries_left -= 1
        finally:
            self._phases.unfollow(match_id)

    async def _wait_exit(self, managed: _Managed) -> int | None:
        """The exit code; None if it was not Ready in time (the process is then killed)."""
        proc = managed.proc
        assert proc is not None
        exited = asyncio.create_task(proc.wait())
        if managed.status.phase in (MatchPhase.PENDING, MatchPhase.CREATING):
            started = asyncio.create_task(
                self._book.left(managed, MatchPhase.PENDING, MatchPhase.CREATING)
            )
            done, _ = await asyncio.wait(
                {exited, started},
                timeout=self.config.startup_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            started.cancel()
            if not done:
                proc.kill()
                await exited
                return None
        return await exited
