"""The match engine benchmark runs end to end at a tiny size (structure only, no timings)."""

from __future__ import annotations

import json
import subprocess
import sys

from tradearena.testing.paths import REPO

ROOT = REPO
BENCH = ROOT / "bench" / "engine_bench.py"

TICK_KEYS = {
    "ticks",
    "median_us",
    "p99_us",
    "mean_us",
    "max_us",
    "ticks_per_s",
    "wall_median_us",
    "wall_p99_us",
    "open_positions_min",
    "open_positions_mean",
    "fired",
    "fired_per_tick",
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), "--players", "20", "--ticks", "50", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )


def test_engine_bench_json_structure() -> None:
    proc = _run("--actions", "600", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    out = json.loads(proc.stdout)
    assert out["config"] == {
        "players": 20,
        "ticks": 50,
        "actions": 600,
        "mode": "arena",
        "gc": "server",
    }
    assert {"nproc", "cpu", "python"} <= set(out["machine"])

    quiet, trig = out["ticks"]["quiet"], out["ticks"]["triggering"]
    for scenario in (quiet, trig):
        assert set(scenario) == TICK_KEYS
        assert scenario["ticks"] == 50
        assert 0 <= scenario["median_us"] <= scenario["p99_us"] <= scenario["max_us"]
        assert scenario["ticks_per_s"] > 0
    # Every player holds a position throughout; the quiet walk rarely reaches a level,
    # the trending one fires some positions (which reopen at once).
    assert quiet["open_positions_min"] == 20
    assert trig["open_positions_min"] == 20
    assert trig["fired"] > 0

    acts = out["actions"]
    assert acts["actions"] == 600
    assert sum(acts["by_code"].values()) == 600
    assert sum(acts["by_type"].values()) == 600
    assert set(acts["by_type"]) == {"open", "set_stops", "peek", "partial", "close", "ability"}
    assert set(acts["us_by_type"]) == set(acts["by_type"])
    assert acts["by_code"]["ok"] > 0
    assert acts["actions_per_s"] > 0 and acts["us_per_action"] > 0
    assert 0 <= acts["rejected_share"] < 1
    assert "rate_limited" not in acts["by_code"]

    assert len(out["targets"]) == 2
    assert all(isinstance(t["met"], bool) and t["name"] and t["limit"] for t in out["targets"])
    assert out["ok"] is all(t["met"] for t in out["targets"])
    assert proc.returncode == (0 if out["ok"] else 1)


def test_engine_bench_table() -> None:
    proc = _run("--actions", "300")
    assert proc.returncode in (0, 1), proc.stderr
    text = proc.stdout
    assert "tick, 20 open positions, quiet" in text
    assert "actions/s" in text
    assert ("PASS" in text) or ("MISS" in text)


def test_engine_bench_rejects_bad_sizes() -> None:
    proc = _run("--actions", "0")
    assert proc.returncode == 2
