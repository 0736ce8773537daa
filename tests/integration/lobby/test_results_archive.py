"""The match archive on real Redis and PostgreSQL: a played match's result stored, its
log archived once (digest checked), its Redis keys expiring, `tradearena replay`
verifying it from the archive after they are gone; a failed archive expires nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from lobby.results.archive.retention import expiring_keys
from lobby.results.worker.consumer import ResultsWorker
from lobby.results.worker.settings import ResultsWorkerSettings
from lobby.results.worker.store import store_result
from matchserver.engine.log import dumps
from tradearena.contracts import keys
from tradearena.contracts.results import MatchResult
from tradearena.modes import default_catalogue
from tradearena.testing.results_factory import make_users, play_and_publish

CLI = Path(sys.executable).parent / "tradearena"
GRACE_S = 120


def settings(dsn: str, consumer: str = "w1") -> ResultsWorkerSettings:
    return ResultsWorkerSettings(
        database_url=dsn,
        results_consumer=consumer,
        results_block_ms=50,
        results_backoff_initial_s=0.01,
        results_backoff_max_s=0.2,
        results_metrics_port=0,
        results_archive_grace_s=GRACE_S,
    )


@pytest.fixture
async def worker(rds: aioredis.Redis, lobby_dsn: str) -> AsyncIterator[ResultsWorker]:
    w = ResultsWorker(rds, default_catalogue(), settings(lobby_dsn))
    await w.ensure_group()
    yield w
    await w.close()


@pytest.fixture
async def pg(lobby_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(lobby_dsn)
    yield conn
    await conn.close()


async def ttls(rds: aioredis.Redis, match_id: str) -> dict[str, int]:
    """TTL of every key the match left (-1: none, -2: not there)."""
    return {key: int(await rds.ttl(key)) for key in expiring_keys(match_id)}


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "replay", *args], capture_output=True, text=True, timeout=120, check=False
    )


async def test_a_played_match_is_archived_expires_and_replays_from_the_archive(
    worker: ResultsWorker,
    rds: aioredis.Redis,
    pg: asyncpg.Connection,
    lobby_dsn: str,
    redis_url: str,
) -> None:
    players = await make_users(lobby_dsn, 4)
    record = await play_and_publish(rds, "m-arc", players, seed=11)
    before = await ttls(rds, "m-arc")
    assert before[keys.match_log("m-arc")] == -1 and before[keys.match_meta("m-arc")] == -1

    assert await worker.process_once(block_ms=10) == 1
    await worker.archiver.idle()  # the follow-up runs in the background
    row = await pg.fetchrow("SELECT * FROM match_archive WHERE match_id = 'm-arc'")
    assert row is not None and row["redis_expire_at"] is not None
    stored = await pg.fetchrow("SELECT log_digest, log_entries FROM matches WHERE id = 'm-arc'")
    assert row["log_digest"] == stored["log_digest"] == record.result["log_digest"]  # type: ignore[index]
    assert row["log_entries"] == stored["log_entries"] == len(record.entries)
    assert row["codec"] == "lzma" and row["compressed_bytes"] == len(row["data"])
    assert 0 < row["compressed_bytes"] < row["raw_bytes"] / 5
    assert worker.archiver.metrics.archived._value.get() == 1
    body = worker.metrics.registry.get_sample_value(
        "tradearena_results_archive_bytes_sum", {"kind": "compressed"}
    )
    assert body == row["compressed_bytes"]

    after = await ttls(rds, "m-arc")
    present = {k: t for k, t in after.items() if t != -2}
    assert keys.match_log("m-arc") in present and keys.result_published("m-arc") in present
    assert all(0 < t <= GRACE_S for t in present.values()), present
    # what the live system still reads keeps no expiry: the results stream and its group
    assert await rds.ttl(keys.RESULTS_STREAM) == -1
    assert await rds.xlen(keys.RESULTS_STREAM) == 1

    await rds.delete(*expiring_keys("m-arc"))  # as the expiry will
    gone = replay("--redis-url", redis_url, "--match-id", "m-arc")
    assert gone.returncode == 2 and "no such match" in gone.stderr
    done = replay("--database-url", lobby_dsn, "--match-id", "m-arc")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"OK m-arc: {len(record.entries)} log entries")

    # a tampered archive is a mismatch, reported by the same verification
    await pg.execute(
        "UPDATE match_archive SET data = $1::bytea, compressed_bytes = octet_length($1::bytea)"
        " WHERE match_id = 'm-arc'",
        await tampered(pg, "m-arc"),
    )
    bad = replay("--database-url", lobby_dsn, "--match-id", "m-arc")
    assert bad.returncode == 1 and bad.stdout.startswith("MISMATCH m-arc")


async def tampered(pg: asyncpg.Connection, match_id: str) -> bytes:
    from tradearena.contracts.archive import Codec, compress, decode

    row = await pg.fetchrow(
        "SELECT data, codec, format FROM match_archive WHERE match_id=$1", match_id
    )
    lines = decode(row["data"], row["codec"], row["format"])  # type: ignore[index]
    lines[-1] = lines[-1].replace('"rank":1', '"rank":9', 1)
    assert lines[-1] != decode(row["data"], row["codec"], row["format"])[-1]  # type: ignore[index]
    return compress("".join(line + "\n" for line in lines).encode(), Codec(row["codec"]))  # type: ignore[index]


async def test_redeliveries_and_racing_workers_archive_once(
    worker: ResultsWorker, rds: aioredis.Redis, pg: asyncpg.Connection, lobby_dsn: str
) -> None:
    players = await make_users(lobby_dsn, 3)
    await play_and_publish(rds, "m-dup", players, seed=2)
    payload = (await rds.xrange(keys.RESULTS_STREAM))[0][1]
    await rds.xadd(keys.RESULTS_STREAM, payload)  # a republished duplicate
    assert await worker.process_once(block_ms=10) == 2
    await worker.archiver.idle()
    assert worker.metrics.duplicates._value.get() == 1
    assert await pg.fetchval("SELECT count(*) FROM match_archive") == 1
    assert worker.archiver.metrics.archived._value.get() == 1

    # two workers racing on a stored, unarchived match: archived once, whoever wins
    await play_and_publish(rds, "m-race", players, seed=3)
    raw = (await rds.xrange(keys.RESULTS_STREAM))[-1][1][b"result"]
    bankroll = default_catalogue().mode("standard").rules.bankroll
    assert await store_result(pg, MatchResult.model_validate_json(raw), "0-2", bankroll)
    other = ResultsWorker(rds, default_catalogue(), settings(lobby_dsn, "w2"))
    try:
        outcomes = await asyncio.gather(
            worker.archiver.archive("m-race"), other.archiver.archive("m-race")
        )
    finally:
        await other.close()
    assert sorted(outcomes)[0] == "archived" and "archived" not in sorted(outcomes)[1:]
    assert await pg.fetchval("SELECT count(*) FROM match_archive") == 2
    total = sum(w.archiver.metrics.archived._value.get() for w in (worker, other))
    assert total == 2
    assert await worker.archiver.archive("m-dup") == "done"


async def test_the_sweep_finishes_a_follow_up_a_crash_left_undone(
    worker: ResultsWorker, rds: aioredis.Redis, pg: asyncpg.Connection, lobby_dsn: str
) -> None:
    """The result committed, then the worker died before archiving: the sweep archives
    it, then gives the keys their expiry."""
    players = await make_users(lobby_dsn, 2)
    await play_and_publish(rds, "m-crash", players, seed=4)
    raw = (await rds.xrange(keys.RESULTS_STREAM))[0][1][b"result"]
    result = MatchResult.model_validate_json(raw)
    assert await store_result(
        pg, result, "0-1", default_catalogue().mode("standard").rules.bankroll
    )
    assert await pg.fetchval("SELECT count(*) FROM match_archive") == 0
    assert (await ttls(rds, "m-crash"))[keys.match_log("m-crash")] == -1
    assert await worker.archiver.sweep() == 1
    assert await pg.fetchval("SELECT count(*) FROM match_archive") == 1
    assert 0 < (await ttls(rds, "m-crash"))[keys.match_log("m-crash")] <= GRACE_S
    assert await worker.archiver.sweep() == 0  # nothing left to do


async def test_a_match_whose_archive_fails_never_expires(
    worker: ResultsWorker, rds: aioredis.Redis, pg: asyncpg.Connection, lobby_dsn: str
) -> None:
    players = await make_users(lobby_dsn, 2)
    record = await play_and_publish(rds, "m-bad", players, seed=6)
    # the log in Redis no longer matches what the result was computed from
    changed = {**record.entries[2].to_wire(), "at": record.entries[2].at + 1}
    await rds.lset(keys.match_log("m-bad"), 2, dumps(changed))
    assert await worker.process_once(block_ms=10) == 1
    await worker.archiver.idle()  # the follow-up runs in the background
    assert await pg.fetchval("SELECT count(*) FROM match_results") == 1  # the result is stored
    assert await pg.fetchval("SELECT count(*) FROM match_archive") == 0
    failures = worker.archiver.metrics.failures.labels("digest_mismatch")
    first = failures._value.get()
    assert first >= 1  # the follow-up (and the worker's first sweep, if it came after)
    assert await worker.archiver.sweep() == 1  # retried, fails again
    assert failures._value.get() == first + 1
    left = await ttls(rds, "m-bad")
    assert left[keys.match_log("m-bad")] == -1 and left[keys.match_meta("m-bad")] == -1
    assert all(t == -1 for t in left.values() if t != -2)
    # a match that keeps failing does not hold up the next one: the sweep moves on
    await play_and_publish(rds, "m-next", players, seed=8)
    raw = (await rds.xrange(keys.RESULTS_STREAM))[-1][1][b"result"]
    bankroll = default_catalogue().mode("standard").rules.bankroll
    assert await store_result(pg, MatchResult.model_validate_json(raw), "0-3", bankroll)
    worker.archiver.sweep_batch = 1
    assert await worker.archiver.sweep() == 1  # m-bad, first in line
    assert await pg.fetchval("SELECT count(*) FROM match_archive") == 0
    assert await worker.archiver.sweep() == 1  # then m-next
    assert await pg.fetchval("SELECT match_id FROM match_archive") == "m-next"
