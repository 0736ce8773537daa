"""The web client in a real browser: two players on headless Chromium play a duel.

`tradearena up` runs the platform (with a one-minute blitz); `tests/js/browser_match.mjs`
drives two pages with Playwright through sign-up, queueing, a live match (orders with
stops, a refused order, set-stops, a partial close, the Action Bar, a dropped
connection, a Peek) and the results screen, asserting what each screen shows.
Screenshots of every step are kept under `artifacts/web/`.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tradearena.testing.browser import run_browser_match
from tradearena.testing.platform import ROOT, UpProcess, short_catalogue

ARTIFACTS = ROOT / "artifacts" / "web" / "match"


async def test_two_players_play_a_duel_in_the_browser(tmp_path: Path, data_dir: Path) -> None:
    up = UpProcess(data_dir / "var", short_catalogue(tmp_path / "modes.toml"))
    up.start()
    try:
        summary, _ = run_browser_match(up.url + "/", ARTIFACTS)
        match_id = summary["match_id"]
        up.wait_for_line(rf"match {match_id} finished")
        a, b = summary["a"], summary["b"]
        assert {a["rank"], b["rank"]} == {1, 2}
        assert a["liquidation"] < a["entry"] < b["liquidation"]
        assert a["peek"] == "peek"
        assert a["ability"] in ("trade_delay on the leader", "refused: not_enough_charges")

        # What the results screens showed is what the results worker stored.
        conn = await asyncpg.connect(up.dsn)
        try:
            rows = await conn.fetch(
                "SELECT u.username, mp.rank, mp.trades FROM match_players mp"
                " JOIN users u ON u.id = mp.user_id WHERE mp.match_id = $1",
                match_id,
            )
            phase = await conn.fetchval("SELECT phase FROM matches WHERE id = $1", match_id)
        finally:
            await conn.close()
        user_a, user_b = summary["players"]
        assert {r["username"]: r["rank"] for r in rows} == {user_a: a["rank"], user_b: b["rank"]}
        assert {r["username"]: r["trades"] for r in rows} == {user_a: 2, user_b: 1}
        assert phase == "finished"
    finally:
        code = up.stop()
    assert code == 0
