"""The player's screens in a real browser, against `tradearena up`.

Results reach the platform the way a match server's do: on the results stream, where
`up`'s results worker stores them (one match played by the engine with fills and a
ledger, and results ending now for the season and daily boards, one of them with 30
players so that "around me" is a page in the middle). `tests/js/browser_screens.mjs`
then signs in and checks each screen against the API at desktop (1280x800) and phone
(390x844) widths; while the notifications screen is open, one more result is stored
and must appear live. Screenshots are kept under `artifacts/web/screens/`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as aioredis

from tradearena.contracts import keys
from tradearena.testing.browser import CHROMIUM, JS
from tradearena.testing.lobby import PASSWORD
from tradearena.testing.platform import ROOT, UpProcess
from tradearena.testing.results_factory import make_result, make_users, play_and_publish

ARTIFACTS = ROOT / "artifacts" / "web" / "screens"
STEPS = (
    "leaderboard-all",
    "leaderboard-daily",
    "history",
    "match-detail",
    "profile",
    "notifications",
)


async def register(url: str, username: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            url + "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
        )
        body: dict[str, Any] = await resp.json()
        assert resp.status == 201, body
        return body


async def publish(rds: aioredis.Redis, *results: Any) -> None:
    for result in results:
        await rds.xadd(keys.RESULTS_STREAM, {"result": result.model_dump_json()})


async def until_stored(dsn: str, match_ids: list[str], within: float = 60) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + within
        while await conn.fetchval(
            "SELECT count(*) FROM match_results WHERE match_id = ANY($1)", match_ids
        ) < len(match_ids):
            assert time.monotonic() < deadline, f"results not stored: {match_ids}"
            await asyncio.sleep(0.2)  # polling the database, with a deadline
    finally:
        await conn.close()


async def run_screens(
    url: str, username: str, match_id: str, on_live: Any
) -> tuple[dict[str, Any], str]:
    """Runs the script; `on_live()` is awaited when it waits for a live notification."""
    assert CHROMIUM.is_file(), "no /usr/bin/chromium: run scripts/bootstrap.sh as root"
    assert (JS / "node_modules" / "playwright-core").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(JS / "browser_screens.mjs"),
        url,
        str(ARTIFACTS),
        username,
        PASSWORD,
        match_id,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    stderr = asyncio.ensure_future(proc.stderr.read())
    lines = []
    try:
        async with asyncio.timeout(240):
            while line := (await proc.stdout.readline()).decode().strip():
                lines.append(line)
                if line == "LIVE":
                    await on_live()
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = (await stderr).decode()
    assert lines, f"the browser script printed nothing:\n{log[-4000:]}"
    summary: dict[str, Any] = json.loads(lines[-1])
    assert proc.returncode == 0 and summary["ok"], f"{summary}\n{log[-6000:]}"
    return summary, log


async def test_leaderboards_history_notifications_and_profile_show_what_the_api_holds(
    data_dir: Path,
) -> None:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    up = UpProcess(data_dir / "var")
    up.start()
    tag = format(int(time.time()) % 100_000, "05d")
    rds = aioredis.Redis.from_url(up.redis_url)
    try:
        me = (await register(up.url, f"screens-{tag}"))["user"]
        crowd = await make_users(up.dsn, 30, prefix=f"crowd{tag}-")
        now = int(time.time() * 1000)
        played = f"screens-played-{tag}"
        await play_and_publish(rds, played, [me["id"], *crowd[:2]], seed=7)
        today = [
            make_result(f"screens-crowd-{tag}", [me["id"], *crowd], seed=3, ended_at=now - 60_000),
            make_result(
                f"screens-three-{tag}", [me["id"], *crowd[2:4]], seed=4, ended_at=now - 40_000
            ),
            make_result(f"screens-duel-{tag}", [me["id"], crowd[4]], seed=5, ended_at=now - 20_000),
        ]
        await publish(rds, *today)
        await until_stored(up.dsn, [played, *(r.match_id for r in today)])

        live = make_result(f"screens-live-{tag}", [me["id"], crowd[5]], seed=6, ended_at=now)

        async def on_live() -> None:
            await publish(rds, live)

        started = time.monotonic()
        summary, _ = await run_screens(up.url, me["username"], played, on_live)
        seconds = time.monotonic() - started

        # What the pages showed is what PostgreSQL holds.
        conn = await asyncpg.connect(up.dsn)
        try:
            fills = await conn.fetchval("SELECT count(*) FROM trades WHERE match_id = $1", played)
            lines = await conn.fetchval(
                "SELECT count(*) FROM ledger_lines WHERE match_id = $1", played
            )
            rated = await conn.fetchval(
                "SELECT matches_played FROM ratings WHERE user_id = $1", me["id"]
            )
            notes = await conn.fetch(
                "SELECT id, read_at FROM notifications WHERE user_id = $1 ORDER BY id", me["id"]
            )
        finally:
            await conn.close()
        for width, later in (("desktop", 0), ("phone", 1)):  # the live result came between
            shown = summary[width]
            assert shown["history"]["fills"] == fills > 0
            assert shown["history"]["ledger"] == lines > fills
            assert shown["history"]["matches"] == 4 + later
            assert shown["profile"]["points"] == rated - 1 + later
            for period in ("all", "season", "daily"):
                board = shown["leaderboards"][period]  # 31 players, pages of 20 around me
                assert board["offset"] == max(0, board["rank"] - 11)
                assert board["rows"] == min(20, 31 - board["offset"])
        assert summary["desktop"]["notifications"]["stored"] == 4
        assert summary["desktop"]["notifications"]["live"] == notes[-1]["id"]
        assert len(notes) == 5 and all(n["read_at"] is not None for n in notes)
        assert summary["phone"]["notifications"] == {"stored": 5, "unread": 0}
        shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
        assert len(shots) == summary["screenshots"] == 18, shots
        for step in STEPS:
            for width in ("desktop", "phone"):
                assert f"{step}-{width}.png" in shots, (step, width, shots)
        assert seconds < 120, seconds
    finally:
        await rds.aclose()
        code = up.stop()
    assert code == 0
