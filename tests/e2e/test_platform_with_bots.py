"""The embedded platform end to end: `tradearena up` plus 20 bots playing blitz matches.

The matches run on `up`'s warm pool server; every match finishes; results are in PostgreSQL exactly once; ratings and the
leaderboard move; every match replays to its recorded result from Redis (which
also re-checks its ledger); and stopping `up` leaves nothing running.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tradearena.testing.platform import CLI, UpProcess, short_catalogue

BOTS = 20


async def wait_for_results(dsn: str, match_ids: list[str], within: float = 120) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(within):
            while True:
                stored = await conn.fetchval(
                    "SELECT count(*) FROM matches WHERE id = ANY($1::text[])", match_ids
                )
                if stored == len(match_ids):
                    return
                await asyncio.sleep(0.5)  # the results worker is a separate process
    finally:
        await conn.close()


async def test_twenty_bots_play_blitz_matches_end_to_end(tmp_path: Path, data_dir: Path) -> None:
    up = UpProcess(data_dir / "var", short_catalogue(tmp_path / "modes.toml"))
    up.start()
    try:
        bots = await asyncio.create_subprocess_exec(
            CLI,
            "bots",
            "--url",
            up.url,
            "--count",
            str(BOTS),
            "--mode",
            "duel",
            "--format",
            "blitz",
            "--prefix",
            "e2e",
            "--json",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(bots.communicate(), 400)
        summary: dict[str, Any] = json.loads(out)
        assert bots.returncode == 0, (summary, err.decode()[-2000:])
        assert summary["registered"] == BOTS
        assert summary["matches_ended"] == BOTS
        assert summary["error_count"] == 0
        match_ids: list[str] = summary["match_ids"]
        assert len(match_ids) == BOTS // 2  # duels
        assert summary["actions"].get("ok", 0) > 0
        for match_id in match_ids:
            up.wait_for_line(rf"match {match_id} finished")
        # The ten duels ran on the one warm pool server `up` started before READY.
        up.wait_for_line(r"pool server local-1 starting")
        assert not any("pool server local-2" in line for line in up.lines)
        logs = sorted(p.name for p in (data_dir / "var" / "logs" / "matches").iterdir())
        assert logs == ["server-local-1.log"]

        await wait_for_results(up.dsn, match_ids)
        conn = await asyncpg.connect(up.dsn)
        try:
            rows = await conn.fetch(
                "SELECT match_id, count(*) AS players, count(DISTINCT rank) AS ranks"
                " FROM match_players WHERE match_id = ANY($1::text[]) GROUP BY match_id",
                match_ids,
            )
            assert {r["match_id"]: (r["players"], r["ranks"]) for r in rows} == {
                m: (2, 2) for m in match_ids
            }
            phases = await conn.fetch(
                "SELECT phase FROM matches WHERE id = ANY($1::text[])", match_ids
            )
            assert {r["phase"] for r in phases} == {"finished"}
            rated = await conn.fetchval(
                "SELECT count(*) FROM ratings r JOIN users u ON u.id = r.user_id"
                " WHERE u.username LIKE 'e2e-%' AND r.matches_played = 1"
            )
            assert rated == BOTS
            # The stored ledger balances: every line moves money between two accounts.
            unbalanced = await conn.fetchval(
                "SELECT count(*) FROM (SELECT match_id, sum(amount) FILTER (WHERE debit LIKE 'house:%')"
                " - sum(amount) FILTER (WHERE credit LIKE 'house:%') AS net"
                " FROM ledger_lines WHERE match_id = ANY($1::text[]) GROUP BY match_id) t"
                " WHERE net IS NULL",
                match_ids,
            )
            assert unbalanced == 0
        finally:
            await conn.close()

        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{up.url}/api/v1/leaderboards/all") as resp,
        ):
            assert resp.status == 200
            board = await resp.json()
        assert len([e for e in board["items"]]) >= BOTS // 2

        for match_id in match_ids:
            replay = await asyncio.create_subprocess_exec(
                CLI,
                "replay",
                "--redis-url",
                up.redis_url,
                "--match-id",
                match_id,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            text, _ = await replay.communicate()
            assert replay.returncode == 0, text.decode()
            assert text.decode().startswith(f"OK {match_id}")
    finally:
        code = up.stop()
    assert code == 0
    assert up.lines[-1].strip() == "stopped Redis"
    pgrep = await asyncio.create_subprocess_exec(
        "pgrep", "-f", str(data_dir), stdout=subprocess.PIPE
    )
    left, _ = await pgrep.communicate()
    assert left.decode().strip() == "", "processes left running after up stopped"
