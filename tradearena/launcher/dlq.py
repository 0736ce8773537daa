"""`tradearena dlq list|show|redrive|drop`: the results stream's dead letter, by hand.

Settings (Redis URL, PostgreSQL DSN) come from the same `TRADEARENA_*` environment as
`tradearena results-worker`. Every redrive and drop is audited in PostgreSQL first
(`lobby.results.deadletter`). Exit codes: 0 done; 1 nothing selected, or an entry
was gone or failed; 2 bad input (unknown id, bad id, empty --actor/--note, invalid
settings); 3 Redis or PostgreSQL unavailable or refusing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tradearena.contracts.deadletter import REASONS

if TYPE_CHECKING:
    from lobby.results.deadletter import DeadLetters

EXIT_OK = 0
EXIT_NOTHING = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3

PROG = "dlq"
CODES = ", ".join(REASONS)


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _list(store: DeadLetters, args: argparse.Namespace) -> int:
    from lobby.results import deadletter_view as view

    letters = await store.listing(args.reason, args.limit)
    now = _now_ms()
    if args.json:
        print(json.dumps([view.row(d, now) for d in letters], indent=2))
    else:
        print(view.table(letters, now, await store.length()))
    return EXIT_OK


async def _show(store: DeadLetters, args: argparse.Namespace) -> int:
    from lobby.results import deadletter_view as view
    from tradearena.contracts.deadletter import entry_ms

    try:
        entry_ms(args.entry_id)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_BAD_INPUT
    letter = await store.get(args.entry_id)
    if letter is None:
        _err(f"no entry {args.entry_id} in the dead letter")
        return EXIT_BAD_INPUT
    now = _now_ms()
    if args.json:
        print(json.dumps(view.show_document(letter, now), indent=2))
    else:
        print(view.show(letter, now))
    return EXIT_OK


async def _act(store: DeadLetters, args: argparse.Namespace) -> int:
    from lobby.results.deadletter import UnknownEntriesError
    from lobby.results.deadletter_view import Selection, SelectionError

    action = args.dlq_command
    actor, note = args.actor.strip(), args.note.strip()
    if not actor or not note:
        _err(f"{action}: --actor and --note must not be empty")
        return EXIT_BAD_INPUT
    try:
        selection = Selection(
            ids=tuple(args.entry_ids), reason=args.reason, every=getattr(args, "all", False)
        )
    except SelectionError as exc:
        _err(f"{action}: {exc}")
        return EXIT_BAD_INPUT
    try:
        letters = await store.select(selection)
    except UnknownEntriesError as exc:
        _err(f"{action}: not in the dead letter: {exc} (nothing was changed)")
        return EXIT_BAD_INPUT
    if not letters:
        _err(f"{action}: nothing selected")
        return EXIT_NOTHING
    done = 0
    for letter in letters:
        result = await store.act(action, letter, actor, note)
        match_id = letter.match_id or "-"
        if result.outcome == "done":
            done += 1
            where = f" -> results entry {result.stream_id}" if result.stream_id else ""
            print(f"{action} {letter.entry_id} (match {match_id}, {letter.reason}){where}")
        else:
            print(f"{action} {letter.entry_id}: {result.outcome}, no longer in the dead letter")
    verb = "redriven" if action == "redrive" else "dropped"
    print(f"{done} of {len(letters)} {verb}, audited by {actor}")
    return EXIT_OK if done == len(letters) else EXIT_NOTHING


async def _run(
    database_url: str, redis_url: str, command: Callable[[DeadLetters], Awaitable[int]]
) -> int:
    from lobby.results.deadletter import DeadLetters
    from tradearena import redisconn

    client = redisconn.connect(redis_url, socket_connect_timeout=5, socket_timeout=30)
    store = DeadLetters(client, database_url)
    try:
        return await command(store)
    finally:
        await store.close()
        await client.aclose()


def _cmd_dlq(args: argparse.Namespace) -> int:
    import asyncpg
    from redis.exceptions import RedisError

    from lobby.results.worker.settings import ResultsWorkerSettings
    from tradearena.process import load_settings

    settings = load_settings(PROG, ResultsWorkerSettings)
    if settings is None:
        return EXIT_BAD_INPUT
    commands: dict[str, Callable[[DeadLetters, argparse.Namespace], Awaitable[int]]] = {
        "list": _list,
        "show": _show,
        "redrive": _act,
        "drop": _act,
    }
    command = commands[args.dlq_command]

    async def run(store: DeadLetters) -> int:
        return await command(store, args)

    try:
        return asyncio.run(_run(settings.database_url, settings.redis_url, run))
    except (RedisError, OSError) as exc:
        _err(f"Redis ({_safe(settings.redis_url)}): {exc}")
    except asyncpg.UndefinedTableError:
        _err("PostgreSQL has no dead_letter_audit table: run `tradearena migrate` first")
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        _err(f"PostgreSQL: {exc}")
    return EXIT_UNAVAILABLE


def _safe(url: str) -> str:
    """A URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return n


def add_parser(sub: Any) -> None:
    """`tradearena dlq ...` on the main parser's subcommands."""
    p = sub.add_parser(
        "dlq",
        help="list, show, redrive or drop dead-lettered results (settings from TRADEARENA_*)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=_cmd_dlq)
    dlq = p.add_subparsers(dest="dlq_command", required=True)

    c = dlq.add_parser("list", help="the entries, oldest first")
    c.add_argument(
        "--reason", choices=REASONS, metavar="CODE", help=f"only entries with this code: {CODES}"
    )
    c.add_argument(
        "--limit", type=_positive, default=100, metavar="N", help="at most N (default 100)"
    )
    c.add_argument("--json", action="store_true", help="machine-readable output")

    c = dlq.add_parser("show", help="one entry, with its original payload")
    c.add_argument("entry_id", metavar="ENTRY_ID")
    c.add_argument("--json", action="store_true", help="machine-readable output")

    for name, text, every in (
        ("redrive", "put entries back on the results stream, remove them here", True),
        ("drop", "remove entries for good (the audit row keeps the payload)", False),
    ):
        c = dlq.add_parser(name, help=text)
        c.add_argument("entry_ids", nargs="*", metavar="ENTRY_ID")
        c.add_argument(
            "--reason", choices=REASONS, metavar="CODE", help=f"every entry with this code: {CODES}"
        )
        if every:
            c.add_argument("--all", action="store_true", help="every entry")
        c.add_argument("--actor", required=True, help="who acts (audited)")
        c.add_argument("--note", required=True, help="why (audited)")
