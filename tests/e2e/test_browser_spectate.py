"""Spectators in a real browser: the lobby's live list, the delayed spectator screen and
its shared link.

One `tradearena up` with a short catalogue whose duels delay spectators by 8 s (the
shipped delay is a minute: tests/unit/lobby/matchmaking/test_live_view.py).
`tests/js/browser_spectate.mjs` has two players play a duel from Node (REST and
Socket.IO) while a third user in headless Chromium finds it under "Live matches" and
watches it; it checks that every frame the spectator receives is at least the delay
old, that each player's trade shows on the spectator's board only once the delay has
passed since it was made (with its side, entry, stops and liquidation), that the chart
holds nothing newer than the view, and that the list's spectator count goes up and a
second tab opening the shared link counts too. Screenshots go to
`artifacts/web/spectate/`.
"""

from __future__ import annotations

from pathlib import Path

from tradearena.testing.browser import run_browser_spectate
from tradearena.testing.platform import ROOT, UpProcess, short_catalogue

ARTIFACTS = ROOT / "artifacts" / "web" / "spectate"
DELAY_MS = 8000


def spectate_catalogue(path: Path) -> Path:
    """The short catalogue, its duels watched `DELAY_MS` late."""
    short_catalogue(path)
    with path.open("a") as out:
        out.write(f"\n[modes.duel.rules.spectate]\ndelay_ms = {DELAY_MS}\n")
    return path


def test_a_spectator_watches_a_live_duel_never_sooner_than_the_delay(
    tmp_path: Path, data_dir: Path
) -> None:
    up = UpProcess(data_dir / "var", spectate_catalogue(tmp_path / "modes.toml"))
    up.start()
    try:
        summary, _ = run_browser_spectate(up.url + "/", ARTIFACTS, DELAY_MS)
        assert summary["delay_ms"] == DELAY_MS and summary["frames"] > 0
        for player in ("a", "b"):
            seen = summary["seen"][player]
            assert seen["waited_ms"] >= DELAY_MS, seen
            assert seen["view_at"] >= seen["traded_at"], seen
        assert summary["spectators"] == {"before": 0, "listed_after": 1, "watching": 2}
    finally:
        code = up.stop()
    assert code == 0
