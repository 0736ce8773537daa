"""A private match in a real browser: `tradearena up` (one-minute blitz) and
`tests/js/browser_private.mjs` driving two Chromium pages. The host opens a private
duel inviting the guest, the guest gets the invitation live and joins by the link, the
host starts it, both trade and see the results screen. Then the platform's PostgreSQL
and lobby say: stored as private, unrated, on no leaderboard. Screenshots under
`artifacts/web/private/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tradearena.testing.browser import run_browser_private
from tradearena.testing.platform import ROOT, UpProcess, short_catalogue

ARTIFACTS = ROOT / "artifacts" / "web" / "private"


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


async def test_a_private_duel_in_the_browser_is_stored_unrated(
    tmp_path: Path, data_dir: Path
) -> None:
    up = UpProcess(data_dir / "var", short_catalogue(tmp_path / "modes.toml"))
    up.start()
    try:
        before = await boards(up.url)
        summary, _ = run_browser_private(up.url + "/", ARTIFACTS)
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
                "SELECT kind, rated, host_id FROM match_options WHERE match_id = $1", match_id
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
        assert phase == "finished"
        assert {r["user_id"] for r in players} == {host, guest}
        assert all(r["rating_delta"] is None and r["trades"] >= 1 for r in players), players
        assert ratings == 0  # no rating row was created or changed
        after = await boards(up.url)
        assert after == before  # all-time, season and daily: unchanged
        for period, board in after.items():
            assert not {str(host), str(guest)} & {e["user_id"] for e in board}, period
    finally:
        code = up.stop()
    assert code == 0
