"""The web client's candle store (`lobby/web/candles.js`) under Node: how the candles
API, the match's `sync` candles and official ticks merge (`tests/js/candle_store.mjs`)."""

from __future__ import annotations

import subprocess

from tradearena.testing.paths import REPO


def test_candle_store_merges_history_sync_and_ticks() -> None:
    proc = subprocess.run(
        ["node", str(REPO / "tests" / "js" / "candle_store.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
