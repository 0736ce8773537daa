"""`tradearena dlq` against real Redis and PostgreSQL and the real results worker:
entries the worker dead-lettered are listed and shown with their reason codes,
redriven once their cause is fixed (stored exactly once) or dropped, every action
audited in PostgreSQL; bad input is one line and an exit code."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from prometheus_client import generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError

from lobby.results.deadletter import DeadLetters
from lobby.results.worker.consumer import ResultsWorker
from lobby.results.worker.settings import ResultsWorkerSettings
from tradearena.contracts import keys
from tradearena.contracts.deadletter import (
    REDRIVEN_FROM_FIELD,
    DeadLetter,
    Reason,
    dead_letter_fields,
)
from tradearena.launcher.cli import main as cli_main
from tradearena.launcher.localservices import free_port
from tradearena.modes import default_catalogue
from tradearena.testing.results_factory import make_result, make_users

OK = ("--actor", "ops", "--note", "n")
GHOSTS = [str(uuid.UUID(int=i + 1, version=4)) for i in range(2)]


@pytest.fixture
async def worker(
    rds: aioredis.Redis, lobby_dsn: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ResultsWorker]:
    monkeypatch.setenv("TRADEARENA_DATABASE_URL", lobby_dsn)
    monkeypatch.setenv("TRADEARENA_REDIS_URL", redis_url)
    settings = ResultsWorkerSettings(
        database_url=lobby_dsn,
        results_consumer="w1",
        results_backoff_initial_s=0.01,
        results_backoff_max_s=0.05,
        results_max_attempts=2,
        results_metrics_port=0,
    )
    w = ResultsWorker(rds, default_catalogue(), settings)
    await w.ensure_group()
    yield w
    await w.close()


async def dlq(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`tradearena dlq ...` through the console script's main (its own event loop)."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli_main, ["dlq", *argv])
    out, err = capsys.readouterr()
    return code, out, err


async def rows(dsn: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def dead_ids(rds: aioredis.Redis) -> list[str]:
    entries: Any = await rds.xrange(keys.RESULTS_DEAD_LETTER)
    return [i.decode() for i, _ in entries]


def metric(w: ResultsWorker, name: str) -> float:
    for line in generate_latest(w.metrics.registry).decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


async def test_a_store_failure_is_listed_shown_fixed_redriven_and_stored_once(
    worker: ResultsWorker,
    rds: aioredis.Redis,
    lobby_dsn: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = make_result("m-ghost", GHOSTS, seed=2)
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await rds.xadd(keys.RESULTS_STREAM, {"result": result.model_dump_json(), "traceparent": trace})
    await rds.xadd(keys.RESULTS_STREAM, {"result": "{not json"})
    await worker.process_once(block_ms=10)
    failed, bad = await dead_ids(rds)
    assert metric(worker, "tradearena_results_dead_letter_entries") == 2
    assert metric(worker, "tradearena_results_dead_letter_oldest_age_seconds") >= 0

    code, out, _ = await dlq(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "AGE", "MATCH", "REASON", "ERROR"]
    first, second = lines[1].split(), lines[2].split()
    assert first[0::2][:2] == [failed, "m-ghost"] and first[3] == "store_failed"
    assert "ForeignKeyViolation" in lines[1] and first[1].endswith("s")  # seconds old
    assert second[0::2][:2] == [bad, "-"] and second[3] == "bad_json"
    assert lines[-1] == "2 shown, 2 in the dead letter"
    code, out, _ = await dlq(capsys, "list", "--reason", "store_failed", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [failed]
    code, out, _ = await dlq(capsys, "show", failed, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["reason"] == "store_failed" and shown["match_id"] == "m-ghost"
    assert json.loads(shown["result"]) == json.loads(result.model_dump_json())
    assert shown["fields"] == {"traceparent": trace}
    code, out, _ = await dlq(capsys, "show", bad)
    assert code == 0 and "{not json" in out and "reason:          bad_json" in out

    # the cause: the players' accounts were missing; they are restored
    conn = await asyncpg.connect(lobby_dsn)
    try:
        await conn.executemany(
            "INSERT INTO users (id, username, username_canonical, password_hash)"
            " VALUES ($1, $2, $2, 'x')",
            [(uuid.UUID(g), f"ghost{i}") for i, g in enumerate(GHOSTS)],
        )
    finally:
        await conn.close()
    code, out, _ = await dlq(capsys, "redrive", failed, "--actor", "ops", "--note", "users back")
    assert code == 0 and "1 of 1 redriven" in out
    assert await dead_ids(rds) == [bad]
    newest: Any = await rds.xrevrange(keys.RESULTS_STREAM, count=1)
    [(redriven_id, fields)] = newest
    assert fields[b"traceparent"].decode() == trace
    assert fields[REDRIVEN_FROM_FIELD.encode()].decode() == failed
    assert await worker.process_once(block_ms=10) == 1
    assert worker.metrics.processed._value.get() == 1
    assert metric(worker, "tradearena_results_dead_letter_entries") == 1
    stored = await rows(lobby_dsn, "SELECT stream_id FROM match_results WHERE match_id='m-ghost'")
    assert [r["stream_id"] for r in stored] == [redriven_id.decode()]
    [audit] = await rows(lobby_dsn, "SELECT * FROM dead_letter_audit")
    assert (audit["action"], audit["entry_id"], audit["match_id"], audit["reason"]) == (
        "redrive",
        failed,
        "m-ghost",
        "store_failed",
    )
    assert (audit["actor"], audit["note"], audit["outcome"]) == ("ops", "users back", "done")
    assert audit["stream_id"] == redriven_id.decode() and audit["completed_at"] >= audit["at"]
    assert json.loads(audit["payload"])["fields"] == {"traceparent": trace}

    # the same entry again: not there any more, nothing changes
    code, _, err = await dlq(capsys, "redrive", failed, "--actor", "ops", "--note", "again")
    assert code == 2 and f"not in the dead letter: {failed}" in err
    await rds.xadd(keys.RESULTS_STREAM, fields)  # a second copy of the redriven entry
    await worker.process_once(block_ms=10)
    assert worker.metrics.duplicates._value.get() == 1
    assert len(await rows(lobby_dsn, "SELECT 1 FROM match_players")) == 2


async def test_drop_by_reason_removes_and_audits_the_whole_payload(
    worker: ResultsWorker,
    rds: aioredis.Redis,
    lobby_dsn: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    players = await make_users(lobby_dsn, 2)
    await rds.xadd(keys.RESULTS_STREAM, {"result": '{"schema_version": 9, "match_id": "m-9"}'})
    await rds.xadd(keys.RESULTS_STREAM, {"result": "\xff oops"})
    await rds.xadd(
        keys.RESULTS_STREAM,
        {
            "result": make_result("m-mode", players)
            .model_copy(update={"mode": "x"})
            .model_dump_json()
        },
    )
    await worker.process_once(block_ms=10)
    schema, _bad, mode = await dead_ids(rds)
    code, out, _ = await dlq(
        capsys, "drop", "--reason", "unknown_schema_version", "--actor", "ops", "--note", "v9 test"
    )
    assert code == 0 and "1 of 1 dropped" in out
    assert schema not in await dead_ids(rds)
    [audit] = await rows(lobby_dsn, "SELECT * FROM dead_letter_audit")
    assert (audit["action"], audit["entry_id"], audit["outcome"]) == ("drop", schema, "done")
    assert audit["match_id"] == "m-9" and audit["stream_id"] is None
    payload = json.loads(audit["payload"])
    assert payload["result"] == '{"schema_version": 9, "match_id": "m-9"}'
    assert payload["reason"] == "unknown_schema_version"
    code, out, _ = await dlq(capsys, "drop", mode, "--actor", "ops", "--note", "bad mode")
    assert code == 0 and len(await dead_ids(rds)) == 1
    await worker.update_dead_letter()
    assert metric(worker, "tradearena_results_dead_letter_entries") == 1
    code, out, _ = await dlq(capsys, "redrive", "--all", "--actor", "ops", "--note", "all")
    assert code == 0 and len(await dead_ids(rds)) == 0
    await worker.update_dead_letter()
    assert metric(worker, "tradearena_results_dead_letter_entries") == 0
    assert metric(worker, "tradearena_results_dead_letter_oldest_age_seconds") == 0
    actions = await rows(lobby_dsn, "SELECT action FROM dead_letter_audit ORDER BY id")
    assert [r["action"] for r in actions] == ["drop", "drop", "redrive"]


async def test_bad_input_is_one_line_and_an_exit_code_and_changes_nothing(
    worker: ResultsWorker,
    rds: aioredis.Redis,
    lobby_dsn: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await rds.xadd(keys.RESULTS_STREAM, {"result": "{"})
    await worker.process_once(block_ms=10)
    [entry] = await dead_ids(rds)
    ok = OK
    cases: list[tuple[tuple[str, ...], int, str]] = [
        (("show", "1-0"), 2, "no entry 1-0"),
        (("show", "nope"), 2, "not a stream entry id"),
        (("redrive", entry, "1-0", *ok), 2, "not in the dead letter: 1-0"),
        (("drop", entry, "bogus", *ok), 2, "not a stream entry id"),
        (("redrive", *ok), 2, "exactly one"),
        (("redrive", entry, "--all", *ok), 2, "exactly one"),
        (("redrive", entry, "--actor", " ", "--note", "n"), 2, "must not be empty"),
        (("drop", "--reason", "store_failed", *ok), 1, "nothing selected"),
    ]
    for argv, want, message in cases:
        code, _, err = await dlq(capsys, *argv)
        assert (code, err.count("\n")) == (want, 1), (argv, err)
        assert message in err, (argv, err)
    for argv in (
        ("drop", entry, "--note", "n"),
        ("list", "--reason", "nope"),
        ("redrive", "--all"),
    ):
        with pytest.raises(SystemExit) as exit_:
            await dlq(capsys, *argv)
        assert exit_.value.code == 2
    assert await dead_ids(rds) == [entry]
    assert await rows(lobby_dsn, "SELECT 1 FROM dead_letter_audit") == []

    monkeypatch.setenv("TRADEARENA_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    code, _, err = await dlq(capsys, "list")
    assert code == 3 and err.startswith("dlq: Redis")


def test_the_console_script_reports_an_unknown_entry_without_a_traceback(
    lobby_dsn: str, redis_url: str
) -> None:
    env: dict[str, Any] = {
        **os.environ,
        "TRADEARENA_DATABASE_URL": lobby_dsn,
        "TRADEARENA_REDIS_URL": redis_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "tradearena.launcher.cli", "dlq", "drop", "1-0", *OK],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == "dlq: drop: not in the dead letter: 1-0 (nothing was changed)\n"


async def test_the_gauges_follow_the_dead_letter_while_the_loop_is_elsewhere(
    lobby_dsn: str, rds: aioredis.Redis
) -> None:
    settings = ResultsWorkerSettings(
        database_url=lobby_dsn, results_metrics_port=0, results_dead_letter_refresh_s=0.05
    )
    w = ResultsWorker(rds, default_catalogue(), settings)
    watcher = asyncio.create_task(w.watch_dead_letter())
    try:
        fields: dict[Any, Any] = dead_letter_fields("1-0", {"result": "{"}, Reason.BAD_JSON, "x")
        entry = await rds.xadd(keys.RESULTS_DEAD_LETTER, fields)
        for want in (1.0, 0.0):
            deadline = time.monotonic() + 10
            while metric(w, "tradearena_results_dead_letter_entries") != want:
                assert time.monotonic() < deadline, f"gauge never {want}"
                await asyncio.sleep(0.02)
            await rds.xdel(keys.RESULTS_DEAD_LETTER, entry)
    finally:
        w.stop()
        await asyncio.wait_for(watcher, 5)


async def test_an_action_redis_refuses_is_still_audited_as_failed(lobby_dsn: str) -> None:
    down = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    store = DeadLetters(down, lobby_dsn)
    raw = dead_letter_fields("9-0", {"result": '{"match_id": "m-x"}'}, Reason.STORE_FAILED, "e")
    letter = DeadLetter.from_stream(b"10-0", raw)
    try:
        with pytest.raises(RedisConnectionError):
            await store.act("redrive", letter, "ops", "try")
    finally:
        await store.close()
        await down.aclose()
    [audit] = await rows(lobby_dsn, "SELECT * FROM dead_letter_audit")
    assert (audit["action"], audit["entry_id"], audit["match_id"]) == ("redrive", "10-0", "m-x")
    assert audit["outcome"] == "failed" and audit["completed_at"] is not None


async def test_two_redrives_of_one_entry_put_it_back_once(
    rds: aioredis.Redis, lobby_dsn: str
) -> None:
    raw: dict[Any, Any] = dead_letter_fields("9-0", {"result": "{}"}, Reason.BAD_JSON, "e")
    letter = DeadLetter.from_stream(await rds.xadd(keys.RESULTS_DEAD_LETTER, raw), raw)
    first, second = DeadLetters(rds, lobby_dsn), DeadLetters(rds, lobby_dsn)
    try:
        done = await asyncio.gather(
            first.act("redrive", letter, "ann", "a"), second.act("redrive", letter, "bob", "b")
        )
    finally:
        await first.close()
        await second.close()
    assert sorted(d.outcome for d in done) == ["done", "gone"]
    assert await rds.xlen(keys.RESULTS_STREAM) == 1 and await dead_ids(rds) == []
    audit = await rows(lobby_dsn, "SELECT outcome FROM dead_letter_audit ORDER BY outcome")
    assert [r["outcome"] for r in audit] == ["done", "gone"]
