"""The web client in a real browser: two players on headless Chromium play a duel.

`tradearena up` runs the platform (with a one-minute blitz); `tests/js/browser_match.mjs`
drives two pages with Playwright through sign-up, queueing, a live match (orders with
stops, a refused order, set-stops, a partial close, the Action Bar, a dropped
connection, a Peek) and the results screen, asserting what each screen shows.
Screenshots of every step are kept under `artifacts/web/`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncpg

from tradearena.testing.platform import ROOT, UpProcess, short_catalogue

CHROMIUM = Path("/usr/bin/chromium")
JS = ROOT / "tests" / "js"
ARTIFACTS = ROOT / "artifacts" / "web"


def _run_browser(url: str) -> tuple[dict[str, Any], str]:
    assert CHROMIUM.is_file(), "no /usr/bin/chromium: run scripts/bootstrap.sh as root"
    assert (JS / "node_modules" / "playwright-core").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    proc = subprocess.run(
        ["node", str(JS / "browser_match.mjs"), url, str(ARTIFACTS)],
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"the browser script printed nothing:\n{proc.stderr[-4000:]}"
    summary: dict[str, Any] = json.loads(lines[-1])
    assert proc.returncode == 0 and summary["ok"], f"{summary}\n{proc.stderr[-6000:]}"
    return summary, proc.stderr


async def test_two_players_play_a_duel_in_the_browser(tmp_path: Path, data_dir: Path) -> None:
    up = UpProcess(data_dir / "var", short_catalogue(tmp_path / "modes.toml"))
    up.start()
    try:
        summary, steps = _run_browser(up.url + "/")
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

    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert len(shots) == summary["screenshots"] >= 10, shots
    for step in (
        "01-lobby-a",
        "02-queued-a",
        "03-live-a",
        "05-position-a",
        "07-peek-a",
        "08-results-a",
        "08-results-b",
    ):
        assert f"{step}.png" in shots, (step, shots)
    assert "FAILED" not in steps
