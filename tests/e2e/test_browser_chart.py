"""The match screen's chart in a real browser (TradingView Lightweight Charts).

One `tradearena up` (one-minute blitz); `tests/js/browser_chart.mjs` plays a duel in
headless Chromium with one player at desktop width (mouse) and one at phone width
(touch), both in the Asia/Kolkata time zone, and checks through the page's hooks
(`window.tradearena.chart`) and the screen: 1 s candles that grow with the official
ticks; 1 m history from the candles API longer than 15 minutes, back after a reload;
the position's levels as price lines; stops dragged on the chart with the mouse and
with a finger, acknowledged by the match server (its `set_stops` answer carries the
new level, which the position then shows), and a dragged take-profit the server refuses
(the line goes back); the peeked live price drawn as its own line; times in the local
zone. Screenshots go to `artifacts/web/chart/`.
"""

from __future__ import annotations

from pathlib import Path

from tradearena.testing.browser import run_browser_chart
from tradearena.testing.platform import ROOT, UpProcess, short_catalogue

ARTIFACTS = ROOT / "artifacts" / "web" / "chart"


def test_the_chart_draws_candles_history_levels_dragged_stops_and_peeks(
    tmp_path: Path, data_dir: Path
) -> None:
    up = UpProcess(data_dir / "var", short_catalogue(tmp_path / "modes.toml"))
    up.start()
    try:
        summary, _ = run_browser_chart(up.url + "/", ARTIFACTS)
        a, b = summary["a"], summary["b"]
        assert a["grow"]["after"] > a["grow"]["before"] > 0
        assert b["grow"]["after"] > b["grow"]["before"] > 0
        assert a["history"]["minutes"] > 15
        assert "05:30" in a["tz"]
        # Acknowledged by the match server: accepted drags by mouse and by touch, and a
        # refusal with the engine's code.
        assert (a["moved"]["kind"], a["moved"]["how"]) == ("take_profit", "mouse")
        assert (b["moved"]["kind"], b["moved"]["how"]) == ("stop_loss", "touch")
        assert a["refused"] == "invalid_stops"
        assert a["peek"]["points"] > 0 and b["peek"]["points"] > 0
        assert "peek" in a["peek"]["title"]
    finally:
        code = up.stop()
    assert code == 0
