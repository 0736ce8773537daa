"""The fan-out benchmark runs end to end with spectators at a tiny size (structure and
delivery only, no timings): the alternating comparison, one run per side."""

from __future__ import annotations

import json
import subprocess
import sys

from tradearena.testing.paths import REPO

BENCH = REPO / "bench" / "fanout.py"


def test_compare_spectators_runs_both_sides_and_spectators_get_frames() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--clients",
            "20",
            "--compare-spectators",
            "20",
            "--runs",
            "1",
            "--warmup",
            "1",
            "--measure",
            "3",
            "--spectate-delay-ms",
            "1000",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout)
    assert [r["side"] for r in runs] == ["players only", "players + spectators"]
    alone, watched = runs
    assert (alone["connected"], watched["connected"]) == (20, 40)
    assert alone["spectator_frames"] == 0
    assert watched["spectators"] == 20
    assert watched["spectator_frames"] >= 20  # about one a second each
    assert watched["spectator_late_p50_ms"] is not None
    assert watched["tick_deliveries"] > 0
    assert watched["spectator_refusals"] == 0
