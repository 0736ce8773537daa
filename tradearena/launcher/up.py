"""`tradearena up`: the whole platform on one machine, no Kubernetes.

Local Redis and PostgreSQL (data under the data directory), migrations, the
feed relay, the results worker, and the lobby (REST, Socket.IO, web client)
with its match runtime. By default matches start at once on a pool of warm
match servers, each hosting many matches (`localpool.py`: capacity, a buffer of
free slots, a maximum of servers); `--dedicated` spawns one server process per
match instead (`localruntime.py`). Ctrl-C (or SIGTERM) stops everything it
started, match servers first (they settle and publish), and nothing is left
running.

Redis, PostgreSQL, the relay and the worker are supervised (`supervisor.py`): one
that dies is restarted with a backoff and a console line; one that fails five
times within a minute stops everything, and `up` exits 1. `status.json` in the
data directory has each child's pid, restarts and probe address.

`prometheus-targets.json` in the data directory lists every /metrics endpoint it runs,
for Prometheus' file-based discovery (`scrape_targets.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Counter

from tradearena import redisconn
from tradearena.contracts.orchestration import MatchSpec, MatchStatus
from tradearena.contracts.phases import MatchPhase
from tradearena.contracts.tracing import SERVICE_LOBBY
from tradearena.launcher import scrape_targets
from tradearena.launcher.localservices import LocalPostgres, LocalRedis, free_port
from tradearena.launcher.supervisor import PostgresChild, ProcessChild, RedisChild, Supervisor
from tradearena.orchestration.buffer import (
    DEFAULT_BUFFER,
    DEFAULT_CAPACITY,
    DEFAULT_MAX_SERVERS,
    BufferPolicy,
)
from tradearena.process import EXIT_BAD_SETTINGS
from tradearena.redisconn import AnyRedis
from tradearena.tokens import Signer, generate_private_key_pem
from tradearena.tracing import TracingSettingsError, init_tracing

CLI = str(Path(sys.executable).parent / "tradearena")

# The past the feed relay writes at start when its stream is cold (synthetic, replay):
# a chart has six hours of 1 m candles (and the last hour of 1 s ones) at once.
UP_BACKFILL_MS = 6 * 3600 * 1000

EXIT_OK = 0
EXIT_CHILD_FAILED = 1  # a supervised child failed five times within a minute


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    lobby_port: int = 8080
    feed: str = "synthetic"  # synthetic | replay | binance
    replay_files: tuple[Path, ...] = ()
    catalogue: Path | None = None
    log_level: str = "INFO"
    restart_initial_s: float = 0.5  # backoff of a supervised child: 0.5, 1, 2, 4 s...
    restart_max_s: float = 15.0
    # Matches run on a pool of warm servers, each hosting up to pool_capacity matches,
    # keeping pool_buffer free slots, at most pool_max_servers; dedicated: one server
    # process per match (started when the match is formed).
    dedicated: bool = False
    pool_capacity: int = DEFAULT_CAPACITY
    pool_buffer: int = DEFAULT_BUFFER
    pool_max_servers: int = DEFAULT_MAX_SERVERS


@dataclass
class Platform:
    """What `up` started, supervised, so it can stop them in reverse."""

    options: UpOptions
    say: Callable[[str], None]
    supervisor: Supervisor
    redis: LocalRedis | None = None
    postgres: LocalPostgres | None = None

    @property
    def logs(self) -> Path:
        return self.options.data_dir / "logs"

    def step(self, text: str) -> float:
        self.say(f"==> {text}")
        return time.monotonic()

    def done(self, started: float, detail: str = "") -> None:
        self.say(f"    ok ({time.monotonic() - started:.1f} s){' ' + detail if detail else ''}")

    def signing_key(self) -> tuple[Path, Path]:
        keys = self.options.data_dir / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        private, public = keys / "signing.pem", keys / "public.pem"
        if not private.exists():
            fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(generate_private_key_pem())
        public.write_bytes(Signer.from_file(private).public_pem())
        return private, public

    def base_env(self) -> dict[str, str]:
        assert self.redis is not None
        assert self.postgres is not None
        env = {
            **os.environ,
            "TRADEARENA_REDIS_URL": self.redis.url,
            "TRADEARENA_DATABASE_URL": self.postgres.dsn,
            "TRADEARENA_LOG_LEVEL": self.options.log_level,
            "TRADEARENA_SOCKETIO_REDIS": "true",
        }
        if self.options.catalogue is not None:
            env["TRADEARENA_CATALOGUE"] = str(self.options.catalogue.resolve())
        return env

    async def spawn(self, name: str, args: list[str], env: dict[str, str], port: int) -> str:
        """Start a supervised `tradearena` process whose probes listen on `port`."""
        probe = f"http://127.0.0.1:{port}"
        child = ProcessChild(name, args, env, self.logs / f"{name}.log", probe=probe)
        await self.supervisor.start(child)
        return probe


def _log_to_file(path: Path, level: str) -> None:
    """The in-process lobby logs JSON to a file; the console keeps the progress lines."""
    from tradearena.telemetry import TraceContextFilter, json_formatter

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(json_formatter("lobby"))
    handler.addFilter(TraceContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def lobby_origins(host: str, port: int, extra: list[str]) -> tuple[str, ...]:
    """The origins of the lobby's web client, which match servers let connect: the
    address it serves, with its loopback names when it serves on loopback or on every
    address, and the lobby's extra origins (`TRADEARENA_CORS_ORIGINS`)."""
    hosts = [] if host in ("0.0.0.0", "::") else [host]  # noqa: S104 - not an origin
    if host in ("0.0.0.0", "::", "127.0.0.1", "localhost"):  # noqa: S104
        hosts += ["127.0.0.1", "localhost"]
    origins = [f"http://{h}:{port}" for h in hosts] + extra
    return tuple(dict.fromkeys(origins))


def _match_line(say: Callable[[str], None]) -> Callable[[MatchSpec, MatchStatus], None]:
    def on_change(spec: MatchSpec, status: MatchStatus) -> None:
        players = len(spec.players)
        if status.phase is MatchPhase.READY:
            say(
                f"match {spec.match_id} started ({spec.mode}/{spec.format}, {players} players) "
                f"at {status.url}"
            )
        elif status.phase.terminal:
            reason = f": {status.reason}" if status.reason else ""
            say(f"match {spec.match_id} {status.phase.value.lower()}{reason}")

    return on_change


async def run_up(options: UpOptions, say: Callable[[str], None] = print) -> int:
    from aiohttp import web

    from lobby.app import SHUTDOWN_TIMEOUT_S, create_app
    from lobby.migrate import apply_migrations
    from lobby.settings import LobbySettings
    from lobby.state import METRICS
    from tradearena.launcher.localpool import LocalPoolConfig, LocalPoolOrchestrator
    from tradearena.launcher.localruntime import LocalProcessOrchestrator, LocalRuntimeConfig
    from tradearena.modes import load_catalogue

    data = options.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    _log_to_file(data / "logs" / "lobby.log", options.log_level)
    # Tracing (OTEL_* environment): this process is the lobby and the local runtime; every
    # child inherits the environment and names its own service, so OTEL_SERVICE_NAME (one
    # name) is not passed on.
    try:
        init_tracing(SERVICE_LOBBY)
    except TracingSettingsError as exc:
        print(f"up: invalid setting {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_SETTINGS
    os.environ.pop("OTEL_SERVICE_NAME", None)
    os.chmod(data, 0o755)  # noqa: S103 - the postgres user must reach its data directory
    # On one machine every player (browser tabs, bots) comes from 127.0.0.1: per-IP budgets
    # made for the internet would refuse the second dozen. Per-account limits still apply.
    os.environ.setdefault("TRADEARENA_REGISTER_LIMIT_IP", "100000")
    os.environ.setdefault("TRADEARENA_RATE_LIMIT_IP", "1000000")
    os.environ.setdefault("TRADEARENA_LOGIN_MAX_FAILURES_IP", "100000")
    # Served on the lobby's /metrics once the lobby runs (up has no endpoint of its own).
    restarts = Counter(
        "tradearena_up_child_restarts_total",
        "Children of up (Redis, PostgreSQL, feed relay, results worker) restarted, by child",
        ["child"],
        registry=None,
    )
    supervisor = Supervisor(
        say,
        data / "status.json",
        initial_s=options.restart_initial_s,
        max_s=options.restart_max_s,
        extra={"lobby": f"http://{options.host}:{options.lobby_port}/"},
        on_restart=lambda child: restarts.labels(child).inc(),
    )
    platform = Platform(options, say, supervisor)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    web_runner: web.AppRunner | None = None
    redis_client: AnyRedis | None = None
    orchestrator: LocalProcessOrchestrator | LocalPoolOrchestrator | None = None
    targets_task: asyncio.Task[None] | None = None
    try:
        t = platform.step("starting Redis")
        platform.redis = LocalRedis(data / "redis")
        await supervisor.start(RedisChild(platform.redis))
        platform.done(t, platform.redis.url)

        t = platform.step("starting PostgreSQL")
        platform.postgres = LocalPostgres(data / "postgres")
        await supervisor.start(PostgresChild(platform.postgres))
        platform.done(t, platform.postgres.dsn)

        t = platform.step("applying migrations")
        applied = await asyncio.to_thread(apply_migrations, platform.postgres.dsn)
        platform.done(t, f"{len(applied)} new")

        private_key, public_key = platform.signing_key()
        env = platform.base_env()

        t = platform.step(f"starting the feed relay ({options.feed})")
        relay_port = free_port()
        relay_env = {
            **env,
            "TRADEARENA_RELAY_SOURCE": options.feed,
            "TRADEARENA_RELAY_HOST": "127.0.0.1",
            "TRADEARENA_RELAY_PORT": str(relay_port),
            # Hours of candles from the first second (backfilled from the source's past).
            "TRADEARENA_RELAY_BACKFILL_MS": env.get(
                "TRADEARENA_RELAY_BACKFILL_MS", str(UP_BACKFILL_MS)
            ),
        }
        if options.replay_files:
            relay_env["TRADEARENA_RELAY_REPLAY_FILES"] = ",".join(
                str(p.resolve()) for p in options.replay_files
            )
        probe = await platform.spawn("feed-relay", [CLI, "feed-relay"], relay_env, relay_port)
        platform.done(t, f"probes {probe}")

        t = platform.step("starting the results worker")
        worker_args = [CLI, "results-worker"]
        if options.catalogue is not None:
            worker_args[1:1] = ["--catalogue", str(options.catalogue.resolve())]
        worker_port = free_port()
        worker_env = {
            **env,
            "TRADEARENA_RESULTS_METRICS_HOST": "127.0.0.1",
            "TRADEARENA_RESULTS_METRICS_PORT": str(worker_port),
        }
        probe = await platform.spawn("results-worker", worker_args, worker_env, worker_port)
        platform.done(t, f"probes {probe}")

        t = platform.step("starting the lobby and the match servers")
        settings = LobbySettings(
            host=options.host,
            port=options.lobby_port,
            database_url=platform.postgres.dsn,
            redis_url=platform.redis.url,
            signing_key_file=private_key,
            socketio_redis=True,
            log_level=options.log_level,  # type: ignore[arg-type]
        )
        redis_client = redisconn.connect(platform.redis.url)
        runtime = LocalRuntimeConfig(
            redis_url=platform.redis.url,
            public_key_file=public_key,
            log_dir=platform.logs / "matches",
            advertise_host=options.host,
            bind_host=options.host,
            feed_source="relay",
            cors_origins=lobby_origins(options.host, options.lobby_port, settings.cors_origins),
            extra_env={k: v for k, v in env.items() if k == "TRADEARENA_CATALOGUE"},
        )
        if options.dedicated:
            orchestrator = LocalProcessOrchestrator(runtime, redis_client, _match_line(say))
            servers = "one match server process per match"
        else:
            policy = BufferPolicy(
                capacity=options.pool_capacity,
                buffer=options.pool_buffer,
                max_servers=options.pool_max_servers,
            )
            pool = LocalPoolOrchestrator(
                LocalPoolConfig(runtime, policy),
                redis_client,
                _match_line(say),
                say=lambda line: say(f"    {line}"),
            )
            orchestrator = pool
            ready = await pool.open()
            servers = (
                f"{ready} warm match server(s) x {policy.capacity} matches, buffer "
                f"{policy.buffer} free, at most {policy.max_servers} servers"
            )
        catalogue = load_catalogue(options.catalogue.resolve()) if options.catalogue else None
        app = create_app(settings, orchestrator=orchestrator, catalogue=catalogue)
        app[METRICS].registry.register(restarts)
        if isinstance(orchestrator, LocalPoolOrchestrator):
            for collector in orchestrator.metrics.collectors():
                app[METRICS].registry.register(collector)
        web_runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await web_runner.setup()
        await web.TCPSite(web_runner, options.host, options.lobby_port).start()
        platform.done(t, servers)

        t = platform.step("writing the Prometheus scrape targets")
        targets_file = data / scrape_targets.FILE_NAME
        fixed = {
            scrape_targets.LOBBY: [scrape_targets.scrape_address(options.host, options.lobby_port)],
            scrape_targets.FEED_RELAY: [scrape_targets.scrape_address("127.0.0.1", relay_port)],
            scrape_targets.RESULTS_WORKER: [
                scrape_targets.scrape_address("127.0.0.1", worker_port)
            ],
        }
        targets_task = asyncio.create_task(
            scrape_targets.keep_targets(targets_file, fixed, orchestrator.metrics_addresses, stop)
        )
        platform.done(t, str(targets_file))

        supervisor.set_state("ready")
        say(f"READY http://{options.host}:{options.lobby_port}/")
        say("open that address in a browser; Ctrl-C stops everything")
        stopping = asyncio.create_task(stop.wait())
        failing = asyncio.create_task(supervisor.failed.wait())
        await asyncio.wait((stopping, failing), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        failing.cancel()
        say("==> stopping")
        return EXIT_CHILD_FAILED if supervisor.failed.is_set() else EXIT_OK
    finally:
        if targets_task is not None:
            targets_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await targets_task
        if orchestrator is not None:
            await orchestrator.close()  # match servers settle and publish first
        if web_runner is not None:
            await web_runner.cleanup()
            say("    stopped the lobby")
        if redis_client is not None:
            await redis_client.aclose()
        await supervisor.stop()
        with contextlib.suppress(Exception):
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
