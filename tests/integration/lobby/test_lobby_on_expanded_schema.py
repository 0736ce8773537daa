"""The running release on the next release's schema: what an upgrade relies on.

`helm upgrade` migrates first, then replaces pods one by one, so the lobby and the
results worker of this release keep serving on a schema with the next release's
migration applied (and run on it for good after a `helm rollback`). Here every shipped
migration is applied plus a synthetic next one: an expand step the policy
(lobby.migration_policy) lets through must leave this code's flows working; a
contract step it refuses must break one, or the policy would be guarding nothing.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from lobby.app import create_app
from lobby.migrate import MIGRATIONS_DIR, apply_migrations
from lobby.migration_policy import check_migration
from lobby.results.worker.consumer import ResultsWorker
from lobby.results.worker.settings import ResultsWorkerSettings
from lobby.settings import LobbySettings
from tradearena.contracts import keys
from tradearena.modes import default_catalogue
from tradearena.testing.lobby import bearer, login, register
from tradearena.testing.results_factory import make_result

# A next release's expand step on every table this release writes: new nullable
# columns, NOT NULL ones with a DEFAULT, a new table and indexes.
NEXT_EXPAND = """\
-- depends: 0104_private_invited
ALTER TABLE users ADD COLUMN country text, ADD COLUMN flags integer NOT NULL DEFAULT 0;
ALTER TABLE player_settings ADD COLUMN theme text NOT NULL DEFAULT 'dark';
ALTER TABLE refresh_tokens ADD COLUMN user_agent text;
ALTER TABLE matches ADD COLUMN region text;
ALTER TABLE match_players ADD COLUMN seat integer;
ALTER TABLE trades ADD COLUMN venue text;
ALTER TABLE ledger_lines ADD COLUMN note text;
ALTER TABLE ratings ADD COLUMN peak_ordinal double precision;
ALTER TABLE notifications ADD COLUMN expires_at timestamptz;
ALTER TABLE match_results ADD COLUMN source text NOT NULL DEFAULT 'stream';
ALTER TABLE match_archive ADD COLUMN checksum text;
ALTER TABLE match_options ADD COLUMN note text;
CREATE TABLE match_comments (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    match_id text NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    body     text NOT NULL
);
CREATE INDEX matches_region ON matches (region) WHERE region IS NOT NULL;
"""

# A contract step shipped too early: the policy refuses it, and this code's result
# store (which does not know the column) fails on it.
NEXT_CONTRACT = """\
-- depends: 0104_private_invited
ALTER TABLE match_players ADD COLUMN seat integer NOT NULL;
"""


def migrate_with_next(dsn: str, workdir: Path, sql: str) -> list[str]:
    """Every shipped migration (already applied to `dsn`) plus `sql` as the next file."""
    directory = workdir / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    (directory / "9000_next.sql").write_text(sql)
    return apply_migrations(dsn, directory)


async def store_results(redis_url: str, dsn: str, match_ids: list[str], players: list[str]) -> int:
    """The results worker of this release stores finished matches (a real consumer)."""
    rds = aioredis.Redis.from_url(redis_url)
    now = int(time.time() * 1000)
    for i, match_id in enumerate(match_ids):
        result = make_result(match_id, players, seed=i, ended_at=now - i * 1000)
        await rds.xadd(keys.RESULTS_STREAM, {"result": result.model_dump_json()})
    worker = ResultsWorker(
        rds, default_catalogue(), ResultsWorkerSettings(database_url=dsn, results_metrics_port=0)
    )
    try:
        await worker.ensure_group()
        return await worker.process_once(block_ms=10)
    finally:
        await worker.close()
        await rds.aclose()


def test_the_synthetic_steps_are_what_the_policy_says() -> None:
    assert check_migration("9000_next.sql", NEXT_EXPAND) == []
    assert check_migration("9000_next.sql", NEXT_CONTRACT) != []


async def test_this_release_works_on_the_next_expand_schema(
    lobby_dsn: str, redis_url: str, lobby_settings: LobbySettings, tmp_path: Path
) -> None:
    assert migrate_with_next(lobby_dsn, tmp_path, NEXT_EXPAND) == ["9000_next"]
    app = create_app(lobby_settings)
    async with TestClient(TestServer(app)) as client:
        # Accounts: register, log in, refresh, read and change settings.
        alice, bob = [await register(client, name) for name in ("alice", "bob")]
        again = await login(client, "alice")
        resp = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": again["refresh_token"]}
        )
        assert resp.status == 200, await resp.text()
        auth = bearer(await resp.json())
        resp = await client.patch(
            "/api/v1/me/settings", json={"preferred_mode": "duel"}, headers=auth
        )
        assert resp.status == 200, await resp.text()
        me = await (await client.get("/api/v1/me", headers=auth)).json()
        assert me["settings"]["preferred_mode"] == "duel"
        # The queue (Redis) around the accounts (PostgreSQL).
        resp = await client.post(
            "/api/v1/queue", json={"mode": "duel", "format": "blitz"}, headers=auth
        )
        assert resp.status == 201, await resp.text()
        assert (await client.delete("/api/v1/queue?mode=duel", headers=auth)).status == 200

        # Results: stored by the worker, read back as history, detail and leaderboards.
        ids = [alice["user"]["id"], bob["user"]["id"]]
        match_ids = ["m-next-0", "m-next-1"]
        assert await store_results(redis_url, lobby_dsn, match_ids, ids) == 2
        history = await (await client.get("/api/v1/matches", headers=auth)).json()
        assert sorted(item["match_id"] for item in history["items"]) == match_ids
        resp = await client.get("/api/v1/matches/m-next-0", headers=auth)
        assert resp.status == 200, await resp.text()
        detail = await resp.json()
        assert {p["user_id"] for p in detail["players"]} == set(ids)
        for period in ("all", "season", "daily"):
            board = await (await client.get(f"/api/v1/leaderboards/{period}")).json()
            assert {e["user_id"] for e in board["items"]} == set(ids), period
        notes = await (await client.get("/api/v1/notifications", headers=auth)).json()
        assert notes["items"], notes


async def test_a_refused_contract_step_breaks_this_release(
    lobby_dsn: str, redis_url: str, tmp_path: Path, lobby_settings: LobbySettings
) -> None:
    assert migrate_with_next(lobby_dsn, tmp_path, NEXT_CONTRACT) == ["9000_next"]
    app = create_app(lobby_settings)
    async with TestClient(TestServer(app)) as client:
        players = [(await register(client, n))["user"]["id"] for n in ("carol", "dave")]
    # The worker cannot store a result (its row lacks the new column): after its retries
    # the result goes to the dead letter, and no match row exists.
    await store_results(redis_url, lobby_dsn, ["m-early"], players)
    with psycopg.connect(lobby_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM matches WHERE id = 'm-early'").fetchone()
    assert row == (0,)
    rds = aioredis.Redis.from_url(redis_url)
    try:
        assert await rds.xlen(keys.RESULTS_DEAD_LETTER) == 1
    finally:
        await rds.aclose()
