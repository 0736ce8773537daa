"""`tradearena`: one console script, one subcommand per process or tool."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tradearena.modes import default_catalogue, load_catalogue

if TYPE_CHECKING:
    from matchserver.engine.log import MatchRecord as MatchRecordType

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2


def _cmd_replay(args: argparse.Namespace) -> int:
    from matchserver.engine.log import MatchRecord
    from matchserver.engine.replay import verify

    path: Path | None = args.log
    store = args.database_url or args.redis_url
    source = str(path) if path is not None else f"match {args.match_id} in {store}"
    try:
        if path is not None:
            record = MatchRecord.read(path)
        elif args.match_id and args.database_url:
            loaded = _record_from_archive(args.database_url, args.match_id)
            if loaded is None:
                raise ValueError("no such match in the archive")
            record = loaded
        elif args.match_id and args.redis_url:
            loaded = _record_from_redis(args.redis_url, args.match_id)
            if loaded is None:
                raise ValueError("no such match")
            record = loaded
        else:
            print(
                "replay: give a LOG file, or --match-id with --redis-url or --database-url",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        verification = verify(record)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"replay: cannot read {source}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(
            json.dumps(
                {
                    "ok": verification.ok,
                    "differences": verification.differences,
                    "result": verification.result,
                },
                indent=2,
            )
        )
    elif verification.ok:
        result = verification.result
        print(
            f"OK {result['match_id']}: {result['log_entries']} log entries, "
            f"{result['ledger_lines']} ledger lines, result reproduced exactly"
        )
    else:
        print(
            f"MISMATCH {record.header.get('match_id')}: "
            f"{len(verification.differences)} difference(s)"
        )
        for line in verification.differences:
            print(f"  - {line}")
    return EXIT_OK if verification.ok else EXIT_MISMATCH


def _record_from_redis(redis_url: str, match_id: str) -> MatchRecordType | None:
    import asyncio

    from matchserver.store import MatchStore
    from tradearena import redisconn

    async def load() -> MatchRecordType | None:
        redis = redisconn.connect(redis_url)
        try:
            return await MatchStore(redis, match_id).load_record()
        finally:
            await redis.aclose()

    return asyncio.run(load())


def _record_from_archive(database_url: str, match_id: str) -> MatchRecordType | None:
    import asyncio

    import asyncpg

    from lobby.results.archive import db
    from matchserver.engine.log import MatchRecord
    from tradearena.contracts.archive import decode

    async def load() -> db.ArchiveRow | None:
        conn = await asyncpg.connect(database_url)
        try:
            return await db.load(conn, match_id)
        finally:
            await conn.close()

    row = asyncio.run(load())
    if row is None:
        return None
    return MatchRecord.parse(decode(row.data, row.codec, row.format))


def _cmd_simulate(args: argparse.Namespace) -> int:
    from matchserver.simulate import SimulationSpec, simulate

    catalogue = load_catalogue(args.catalogue)
    spec = SimulationSpec(
        mode=args.mode,
        format=args.format,
        players=args.players,
        seed=args.seed,
        match_id=args.match_id,
    )
    try:
        record = simulate(catalogue, spec)
    except (KeyError, ValueError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record.write(args.out)
    assert record.result is not None
    print(
        f"match {spec.match_id} ({spec.mode}/{spec.format}, {spec.players} players): "
        f"{record.result['phase']}, {len(record.entries)} log entries -> {args.out}"
    )
    for row in record.result["standings"]:
        print(
            f"  #{row['rank']:<3} {row['player']:<12} equity {row['equity']:>16} USDT  "
            f"trades {row['trades']:>3}  {row['status']}"
        )
    print(f"verify with: tradearena replay {args.out}")
    return EXIT_OK


def _cmd_matchserver(args: argparse.Namespace) -> int:
    """One match (TRADEARENA_MATCH_ID) or a pool of them (TRADEARENA_SERVER_ID); settings
    from TRADEARENA_* environment variables."""
    from matchserver.app import serve
    from matchserver.settings import MatchServerSettings
    from tradearena.process import run_process

    def settings() -> MatchServerSettings:
        return MatchServerSettings()  # from the environment

    return run_process("matchserver", settings, serve)


def _cmd_feed_relay(args: argparse.Namespace) -> int:
    """The feed relay: settings from TRADEARENA_* (see matchserver.relay.settings)."""
    from matchserver.relay.main import serve
    from matchserver.relay.settings import RelaySettings
    from tradearena.process import run_process

    return run_process("feed-relay", RelaySettings, serve)


def _cmd_bots(args: argparse.Namespace) -> int:
    import asyncio

    from tradearena.launcher.bots import BotOptions, run_bots
    from tradearena.launcher.dial import DialOptions, parse_hosts

    try:
        hosts = parse_hosts(args.resolve)
    except ValueError as exc:
        print(f"bots: --resolve: {exc}", file=sys.stderr)
        return 2
    options = BotOptions(
        url=args.url.rstrip("/"),
        count=args.count,
        mode=args.mode,
        format=args.format,
        rounds=args.rounds,
        prefix=args.prefix,
        seed=args.seed,
        dial=DialOptions(ca_file=args.ca_file, hosts=hosts),
    )
    stats = asyncio.run(run_bots(options))
    summary = stats.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"bots: {summary['registered']}/{options.count} signed in, "
            f"{summary['matches_ended']}/{summary['matches_played']} matches played to the end, "
            f"{sum(summary['actions'].values())} actions, {summary['reconnects']} reconnects, "
            f"{summary['error_count']} errors"
        )
        for line in summary["errors"]:
            print(f"  error: {line}")
    return EXIT_OK if summary["error_count"] == 0 else EXIT_MISMATCH


def _cmd_modes(args: argparse.Namespace) -> int:
    catalogue = load_catalogue(args.catalogue)
    for name, mode in catalogue.modes.items():
        p = mode.players
        print(f"{name:<10} players {p.min}/{p.recommended}/{p.max}  {mode.description}")
    print("formats: " + ", ".join(f"{k} {v} min" for k, v in catalogue.formats.items()) + ", auto")
    return EXIT_OK


def _cmd_up(args: argparse.Namespace) -> int:
    import asyncio

    from tradearena.launcher.up import UpOptions, run_up

    options = UpOptions(
        data_dir=args.data_dir,
        host=args.host,
        lobby_port=args.lobby_port,
        feed=args.feed,
        replay_files=tuple(args.replay_file),
        catalogue=args.catalogue,
        log_level=args.log_level,
        dedicated=args.dedicated,
        pool_capacity=args.pool_capacity,
        pool_buffer=args.pool_buffer,
        pool_max_servers=args.pool_max_servers,
    )
    from tradearena.orchestration.buffer import BufferPolicy

    try:  # before anything starts
        BufferPolicy(options.pool_capacity, options.pool_buffer, 1, options.pool_max_servers)
    except ValueError as exc:
        print(f"up: pool: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if options.feed == "replay" and not options.replay_files:
        print("up: --feed replay needs at least one --replay-file", file=sys.stderr)
        return EXIT_BAD_INPUT
    if options.feed == "replay":
        from matchserver.feed.sources import check_replay_files
        from matchserver.relay.settings import RelaySettings

        speed = RelaySettings.model_fields["relay_replay_speed"].default
        try:  # before anything starts: a bad file is an error, not a READY and a crash loop
            check_replay_files(options.replay_files, speed)
        except ValueError as exc:
            print(f"up: replay file {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    from tradearena.process import stop_guarded

    return asyncio.run(stop_guarded(run_up(options, say=lambda line: print(line, flush=True))))


def _cmd_migrate(args: argparse.Namespace) -> int:
    from lobby.migrate import apply_migrations
    from lobby.settings import LobbySettings

    dsn = args.database_url or LobbySettings().database_url
    applied = apply_migrations(dsn)
    print(f"migrate: applied {len(applied)} migration(s)" + "".join(f"\n  {m}" for m in applied))
    return EXIT_OK


def _cmd_lobby(args: argparse.Namespace) -> int:
    from lobby.main import promote_admin, run

    if args.promote_admin:
        return EXIT_OK if promote_admin(args.promote_admin) else EXIT_BAD_INPUT
    return run()


def _cmd_results_worker(args: argparse.Namespace) -> int:
    """Match results from the Redis stream into PostgreSQL (settings from TRADEARENA_*)."""
    import asyncio

    from lobby.results.worker.main import serve
    from lobby.results.worker.settings import ResultsWorkerSettings
    from tradearena.process import run_process

    async def main(settings: ResultsWorkerSettings, stop: asyncio.Event) -> int:
        return await serve(settings, load_catalogue(args.catalogue or settings.catalogue), stop)

    return run_process("results-worker", ResultsWorkerSettings, main)


def _cmd_operator(args: argparse.Namespace) -> int:
    """The match operator (kopf); settings from TRADEARENA_OPERATOR_*."""
    from match_operator.main import run

    return run()


def _cmd_drain_matches(args: argparse.Namespace) -> int:
    """Settle every live match of a namespace (the chart's pre-delete hook)."""
    import asyncio

    from tradearena.orchestration.kubernetes import KubernetesOrchestrator

    async def drain() -> int:
        orchestrator = await KubernetesOrchestrator.connect(args.namespace, args.kubeconfig)
        try:
            return await orchestrator.drain(timeout_s=args.timeout)
        finally:
            await orchestrator.close()

    if not args.namespace:
        print("drain-matches: no namespace (--namespace or POD_NAMESPACE)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        count = asyncio.run(drain())
    except TimeoutError as exc:
        print(f"drain-matches: {exc}", file=sys.stderr)
        return EXIT_MISMATCH
    print(f"drain-matches: {count} match(es) settled and removed from {args.namespace}")
    return EXIT_OK


def _cmd_http_check(args: argparse.Namespace) -> int:
    """GET a URL until it answers 2xx (the chart's `helm test`; the image has no curl)."""
    import time
    import urllib.error
    import urllib.request

    last = ""
    for attempt in range(args.retries + 1):
        if attempt:
            time.sleep(min(2.0**attempt / 4, 5.0))
        try:
            with urllib.request.urlopen(args.url, timeout=args.timeout) as reply:  # noqa: S310 - http(s) only, checked below
                print(f"http-check: {args.url} answered {reply.status}")
                return EXIT_OK
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
    print(
        f"http-check: {args.url} failed after {args.retries + 1} attempt(s): {last}",
        file=sys.stderr,
    )
    return EXIT_MISMATCH


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError("an http:// or https:// URL")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradearena", description=__doc__)
    parser.add_argument(
        "--catalogue",
        type=Path,
        default=None,
        help="mode catalogue TOML (default: the packaged one)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("replay", help="recompute a match from its log and verify its result")
    p.add_argument(
        "log", type=Path, nargs="?", help="match log (JSON lines: header, entries, result)"
    )
    p.add_argument("--redis-url", help="read the match from Redis instead of a file")
    p.add_argument(
        "--database-url",
        help="read the match from its archive in PostgreSQL (after its Redis keys expired)",
    )
    p.add_argument("--match-id", help="with --redis-url or --database-url: the match to verify")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("simulate", help="play a match with scripted players, write its log")
    p.add_argument("--mode", default="standard")
    p.add_argument("--format", default="blitz")
    p.add_argument("--players", type=int, default=6)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--match-id", default="sim-1")
    p.add_argument("--out", type=Path, default=Path("var/matches/sim-1.jsonl"))
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("matchserver", help="run one match server (settings from TRADEARENA_*)")
    p.set_defaults(func=_cmd_matchserver)

    p = sub.add_parser("feed-relay", help="run a feed relay replica (settings from TRADEARENA_*)")
    p.set_defaults(func=_cmd_feed_relay)

    p = sub.add_parser("bots", help="simulated players on the real REST and Socket.IO protocols")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the lobby")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--mode", default="duel")
    p.add_argument("--format", default="blitz")
    p.add_argument("--rounds", type=int, default=1, help="matches per bot")
    p.add_argument("--prefix", default=f"bot{os.getpid()}", help="username prefix")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--ca-file", type=Path, default=None, help="PEM CA trusted for wss:// match servers"
    )
    p.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="NAME=ADDRESS",
        help="dial NAME (or *.SUFFIX) at ADDRESS instead of resolving it (repeatable)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bots)

    p = sub.add_parser("modes", help="list the modes and formats of the catalogue")
    p.set_defaults(func=_cmd_modes)

    p = sub.add_parser("up", help="run the whole platform on this machine (no Kubernetes)")
    p.add_argument("--data-dir", type=Path, default=Path("var"), help="Redis, PostgreSQL, logs")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on and advertise")
    p.add_argument("--lobby-port", type=int, default=8080)
    p.add_argument("--feed", choices=("synthetic", "replay", "binance"), default="synthetic")
    p.add_argument(
        "--replay-file",
        type=Path,
        action="append",
        default=[],
        help="Binance public-data CSV (klines or trades); repeatable",
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument(
        "--no-browser", action="store_true", help="accepted for scripts; up never opens one"
    )
    from tradearena.orchestration import buffer  # pure and small: its defaults

    p.add_argument(
        "--dedicated",
        action="store_true",
        help="one match server process per match, started when it is formed (instead of"
        " the pool of warm servers)",
    )
    p.add_argument(
        "--pool-capacity",
        type=int,
        default=buffer.DEFAULT_CAPACITY,
        metavar="N",
        help="matches one pool server hosts at once (default %(default)s)",
    )
    p.add_argument(
        "--pool-buffer",
        type=int,
        default=buffer.DEFAULT_BUFFER,
        metavar="N",
        help="free match slots kept warm; a server starts when fewer are free"
        " (default %(default)s)",
    )
    p.add_argument(
        "--pool-max-servers",
        type=int,
        default=buffer.DEFAULT_MAX_SERVERS,
        metavar="N",
        help="at most this many pool servers (default %(default)s)",
    )
    p.set_defaults(func=_cmd_up)

    p = sub.add_parser("migrate", help="apply pending PostgreSQL migrations")
    p.add_argument("--database-url", default=None, help="default: TRADEARENA_DATABASE_URL")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("lobby", help="run the lobby (REST + Socket.IO; settings from env)")
    p.add_argument("--promote-admin", metavar="USERNAME", help="give a user the admin role, exit")
    p.set_defaults(func=_cmd_lobby)

    p = sub.add_parser(
        "operator", help="run the match operator (settings from TRADEARENA_OPERATOR_*)"
    )
    p.set_defaults(func=_cmd_operator)

    p = sub.add_parser("results-worker", help="store match results from Redis into PostgreSQL")
    p.set_defaults(func=_cmd_results_worker)

    from tradearena.launcher import dlq

    dlq.add_parser(sub)

    p = sub.add_parser(
        "drain-matches", help="delete every Match of a namespace, wait until each has settled"
    )
    p.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE", ""))
    p.add_argument("--timeout", type=float, default=300.0, help="seconds")
    p.add_argument("--kubeconfig", default=None, help="outside a cluster")
    p.set_defaults(func=_cmd_drain_matches)

    p = sub.add_parser("http-check", help="GET a URL until it answers 2xx (exit 1 if never)")
    p.add_argument("url", type=_http_url)
    p.add_argument("--retries", type=int, default=5)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per attempt")
    p.set_defaults(func=_cmd_http_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.catalogue is None:
        default_catalogue()  # fail fast on a broken packaged catalogue
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
