"""The replica-wait benchmark runs end to end at a tiny size (structure only, no timings):
both modes, every action acknowledged, the waiting mode's writes waited for."""

from __future__ import annotations

import json
import subprocess
import sys

from tradearena.testing.paths import REPO

BENCH = REPO / "bench" / "replica_wait.py"
SMALL = ("--players", "10", "--actions", "60", "--rounds", "1")


def test_replica_wait_bench_measures_both_modes() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--json", *SMALL],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    rows = {row["wait_replicas"]: row for row in out["results"]}
    assert set(rows) == {0, 1}
    for row in rows.values():
        (run,) = row["runs"]
        assert run["actions"] == 60 and sum(run["by_code"].values()) == 60
        assert row["actions_per_s"] > 0 and row["ack_p99_ms"] >= row["ack_p50_ms"] > 0
    assert rows[0]["runs"][0]["waited_writes"] == 0
    assert rows[1]["runs"][0]["waited_writes"] >= 60  # each action, and the feed's prices
