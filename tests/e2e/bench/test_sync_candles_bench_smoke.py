"""The sync-candles benchmark runs end to end and its memory and size stay in bounds
(timings are reported, not asserted: the machine is shared)."""

from __future__ import annotations

import json
import subprocess
import sys

from tradearena.testing.paths import REPO

BENCH = REPO / "bench" / "sync_candles.py"


def test_sync_candles_bench_reports_a_bounded_match() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["memory"]["candles"] == out["sync"]["candles"] == 900
    assert 0 < out["memory"]["bytes"] < 600_000  # the per-match bound
    assert 0 < out["sync"]["json_bytes"] < 100_000
    assert out["tick_path"]["calls"] == 200_000
    assert out["restore"]["log_prices"] == 7200 and out["restore"]["rebuild_ms"] > 0
