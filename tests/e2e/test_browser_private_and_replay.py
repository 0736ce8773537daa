"""A private match and the replay viewer in a real browser, on one `tradearena up`
(one-minute blitz) whose two matches run at the same time.

- **Private match** (`tests/js/browser_private.mjs`, three Chromium pages): the host opens
  a private duel inviting the guest and a friend, the guest gets the invitation live and
  joins by the link, the host starts it, both trade and see the results screen; the
  friend, invited but not playing, opens the link once the duel is live and watches it
  (the room's Watch button, the spectator screen connected to that match). Then
  PostgreSQL and the lobby say: stored as private, unrated, on no leaderboard, the friend
  recorded as invited and not a player. Screenshots under `artifacts/web/private/`.
- **Replay viewer**: meanwhile two other players sign up on the REST API and play a ranked
  duel on the protocols (`tests/js/replay_duel.mjs`: queue, the `/lobby` and `/match`
  namespaces, orders with stops, a partial close, a flip) while Chromium starts
  (`tests/js/browser_replay.mjs`). Once the results worker stored that result, the browser
  signs in as one of them, opens the replay from the History screen and by its link,
  plays it with the speed control to the end and reads the final board, which must be
  what PostgreSQL stored. Screenshots under `artifacts/web/replay/`.

The leaderboards are compared before and after the private match only: the ranked duel
beside it is rated and may reach them, so the check is that neither private player does.
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

from tradearena.testing.browser import CHROMIUM, JS, run_browser_private
from tradearena.testing.lobby import PASSWORD
from tradearena.testing.platform import ROOT, UpProcess, short_catalogue

PRIVATE_ARTIFACTS = ROOT / "artifacts" / "web" / "private"
REPLAY_ARTIFACTS = ROOT / "artifacts" / "web" / "replay"


async def boards(url: str) -> dict[str, list[dict[str, Any]]]:
    """The all-time, season and daily leaderboards' first pages."""
    out = {}
    async with aiohttp.ClientSession(url) as http:
        for period in ("all", "season", "daily"):
            async with http.get(f"/api/v1/leaderboards/{period}?limit=100") as resp:
                body = await resp.json()
            assert resp.status == 200, body
            out[period] = body["items"]
    return out


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


async def check_private(
    up: UpProcess, summary: dict[str, Any], before: Any, ranked: set[str]
) -> None:
    match_id = summary["match_id"]
    assert {summary["host"]["rank"], summary["guest"]["rank"]} == {1, 2}
    conn = await asyncpg.connect(up.dsn)
    try:
        users = {
            r["username"]: r["id"]
            for r in await conn.fetch(
                "SELECT id, username FROM users WHERE username = ANY($1::text[])",
                summary["players"],
            )
        }
        kind = await conn.fetchrow(
            "SELECT kind, rated, host_id, invited_ids FROM match_options WHERE match_id = $1",
            match_id,
        )
        watcher = await conn.fetchval(
            "SELECT id FROM users WHERE username = $1", summary["watcher"]
        )
        phase = await conn.fetchval("SELECT phase FROM matches WHERE id = $1", match_id)
        players = await conn.fetch(
            "SELECT user_id, rank, trades, rating_delta FROM match_players WHERE match_id = $1",
            match_id,
        )
        ratings = await conn.fetchval(
            "SELECT count(*) FROM ratings WHERE user_id = ANY($1::uuid[])", list(users.values())
        )
    finally:
        await conn.close()
    host, guest = (users[name] for name in summary["players"])
    assert (kind["kind"], kind["rated"], kind["host_id"]) == ("private", False, host)
    assert watcher in kind["invited_ids"] and watcher not in {r["user_id"] for r in players}
    assert phase == "finished"
    assert {r["user_id"] for r in players} == {host, guest}
    assert all(r["rating_delta"] is None and r["trades"] >= 1 for r in players), players
    assert ratings == 0  # no rating row was created or changed
    after = await boards(up.url)
    for period, board in after.items():
        on_board = {e["user_id"] for e in board}
        assert not {str(host), str(guest)} & on_board, period
        # Only the ranked duel's players can have joined the boards meanwhile.
        assert on_board <= {e["user_id"] for e in before[period]} | ranked, period


async def test_a_private_duel_and_a_replayed_duel_in_the_browser(
    tmp_path: Path, data_dir: Path
) -> None:
    assert CHROMIUM.is_file(), "no /usr/bin/chromium: run scripts/bootstrap.sh as root"
    assert (JS / "node_modules" / "playwright-core").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    if REPLAY_ARTIFACTS.exists():
        shutil.rmtree(REPLAY_ARTIFACTS)
    REPLAY_ARTIFACTS.mkdir(parents=True)
    up = UpProcess(data_dir / "var", short_catalogue(tmp_path / "modes.toml"))
    up.start()
    started = time.monotonic()
    browser = await asyncio.create_subprocess_exec(
        "node",
        str(JS / "browser_replay.mjs"),
        up.url + "/",
        str(REPLAY_ARTIFACTS),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert browser.stdin is not None and browser.stdout is not None
    assert browser.stderr is not None
    stderr = asyncio.ensure_future(browser.stderr.read())
    duel: asyncio.subprocess.Process | None = None
    try:
        before = await boards(up.url)
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
        # The private match plays in its own pages while the ranked duel plays.
        private_summary, _ = await asyncio.to_thread(
            run_browser_private, up.url + "/", PRIVATE_ARTIFACTS
        )
        await check_private(up, private_summary, before, ranked={a["user"]["id"], b["user"]["id"]})

        async with asyncio.timeout(120):
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
        shots = sorted(p.name for p in REPLAY_ARTIFACTS.glob("*.png"))
        assert len(shots) == summary["screenshots"] == 4, shots
        assert browser_s < 40, browser_s
        assert time.monotonic() - started < 180
    finally:
        if browser.returncode is None:
            browser.kill()
            await browser.wait()
        if duel is not None and duel.returncode is None:
            duel.kill()
            await duel.wait()
        code = up.stop()
    assert code == 0
