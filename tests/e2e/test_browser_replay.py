"""The replay viewer in a real browser, on a duel played through the real platform.

`tradearena up` runs the platform with a one-minute blitz. Two players sign up on the
REST API and play a duel on the protocols (`tests/js/replay_duel.mjs`: queue, the
`/lobby` and `/match` namespaces, orders with stops, a partial close, a flip) while
Chromium starts (`tests/js/browser_replay.mjs`). Once the results worker stored the
result, the browser signs in as one of them, opens the replay from the History screen
and by its link, plays it with the speed control to the end and reads the final
board, which must be what PostgreSQL stored. Screenshots: `artifacts/web/replay/`.
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

from tradearena.testing.browser import CHROMIUM, JS
from tradearena.testing.lobby import PASSWORD
from tradearena.testing.platform import ROOT, UpProcess, short_catalogue

ARTIFACTS = ROOT / "artifacts" / "web" / "replay"


async def register(http: aiohttp.ClientSession, url: str, username: str) -> dict[str, Any]:
    resp = await http.post(
        url + "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
    )
    body: dict[str, Any] = await resp.json()
    assert resp.status == 201, body
    return body


async def until_stored(dsn: str, match_id: str, within: float = 60) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + within
        while not await conn.fetchval(
            "SELECT count(*) FROM match_results WHERE match_id = $1", match_id
        ):
            assert time.monotonic() < deadline, f"result of {match_id} not stored"
            await asyncio.sleep(0.2)  # polling the database, with a deadline
    finally:
        await conn.close()


async def test_a_played_duel_replays_in_the_browser_to_its_stored_result(
    tmp_path: Path, data_dir: Path
) -> None:
    assert CHROMIUM.is_file(), "no /usr/bin/chromium: run scripts/bootstrap.sh as root"
    assert (JS / "node_modules" / "playwright-core").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    up = UpProcess(data_dir / "var", short_catalogue(tmp_path / "modes.toml"))
    up.start()
    started = time.monotonic()
    browser = await asyncio.create_subprocess_exec(
        "node",
        str(JS / "browser_replay.mjs"),
        up.url + "/",
        str(ARTIFACTS),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert browser.stdin is not None and browser.stdout is not None
    assert browser.stderr is not None
    stderr = asyncio.ensure_future(browser.stderr.read())
    try:
        tag = format(int(time.time()) % 100_000, "05d")
        async with aiohttp.ClientSession() as http:
            a = await register(http, up.url, f"replay-a-{tag}")
            b = await register(http, up.url, f"replay-b-{tag}")
        duel = await asyncio.create_subprocess_exec(
            "node",
            str(JS / "replay_duel.mjs"),
            up.url,
            a["access_token"],
            b["access_token"],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(180):
            played_out, played_err = await duel.communicate()
        played = json.loads(played_out.decode().strip().splitlines()[-1])
        assert duel.returncode == 0, (played, played_err.decode()[-3000:])
        match_id = played["match_id"]
        assert "ok" in played["acks"]["a"] and "ok" in played["acks"]["b"], played
        await until_stored(up.dsn, match_id)
        stored_at = time.monotonic()

        async with asyncio.timeout(120):
            assert (await browser.stdout.readline()).decode().strip() == "READY"
            browser.stdin.write(
                json.dumps(
                    {"username": a["user"]["username"], "password": PASSWORD, "match_id": match_id}
                ).encode()
                + b"\n"
            )
            await browser.stdin.drain()
            lines = (await browser.stdout.read()).decode().strip().splitlines()
            await browser.wait()
        log = (await stderr).decode()
        assert lines, f"the browser script printed nothing:\n{log[-4000:]}"
        summary: dict[str, Any] = json.loads(lines[-1])
        assert browser.returncode == 0 and summary["ok"], f"{summary}\n{log[-6000:]}"
        browser_s = time.monotonic() - stored_at

        # The final board the page showed is what the results worker stored.
        conn = await asyncpg.connect(up.dsn)
        try:
            rows = await conn.fetch(
                "SELECT user_id::text AS id, rank, equity, trades FROM match_players"
                " WHERE match_id = $1 ORDER BY rank",
                match_id,
            )
            fills = await conn.fetchval("SELECT count(*) FROM trades WHERE match_id = $1", match_id)
        finally:
            await conn.close()
        assert [(r["player"], r["rank"], r["equity"]) for r in summary["board"]] == [
            (r["id"], r["rank"], str(r["equity"])) for r in rows
        ]
        assert {r["id"] for r in rows} == {a["user"]["id"], b["user"]["id"]}
        assert fills >= 5 and all(r["trades"] >= 2 for r in rows)
        assert summary["positions_shown"] > 0
        assert summary["pace"]["x16"] > 4 * summary["pace"]["x2"]
        shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
        assert len(shots) == summary["screenshots"] == 4, shots
        assert browser_s < 40, browser_s
        assert time.monotonic() - started < 150
    finally:
        if browser.returncode is None:
            browser.kill()
            await browser.wait()
        code = up.stop()
    assert code == 0
