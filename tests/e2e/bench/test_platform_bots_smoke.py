"""The Node load generator of bench/platform_load.py plays whole matches on the real
embedded platform (`tradearena up`, one-minute blitz) with no error: orders, stops and
closes answered, a reconnect each, ticks timed, and the summary the bench aggregates."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
from pathlib import Path

from tradearena.testing.platform import ROOT, UpProcess, short_catalogue

_spec = importlib.util.spec_from_file_location("platform_load", ROOT / "bench" / "platform_load.py")
assert _spec is not None and _spec.loader is not None
platform_load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(platform_load)

BOTS = 4
JS = ROOT / "tests" / "js"
SUMMARY_KEYS = {
    "registered",
    "matches_played",
    "matches_ended",
    "match_ids",
    "actions",
    "reconnects",
    "errors",
    "error_count",
    "tick_latency_p50_ms",
    "tick_latency_p99_ms",
}


def test_node_bots_play_duels_to_the_end_without_errors(tmp_path: Path, data_dir: Path) -> None:
    assert (JS / "node_modules" / "socket.io-client").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    up = UpProcess(data_dir / "var", short_catalogue(tmp_path / "modes.toml"))
    up.start()
    try:
        args = argparse.Namespace(mode="duel", format="blitz", generator="node")
        command = platform_load.generator(args, up.url, BOTS, "smoke")
        # Quick thinkers, and each bot drops its connection once early in the match.
        command += ["--think-min", "0.2", "--think-max", "0.6", "--reconnect", "20"]
        bots = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
        summary = json.loads(bots.stdout)
        assert bots.returncode == 0, (summary, bots.stderr[-2000:])
        assert set(summary) >= SUMMARY_KEYS
        assert summary["error_count"] == 0, summary["errors"]
        assert summary["registered"] == BOTS
        assert summary["matches_played"] == summary["matches_ended"] == BOTS
        assert len(summary["match_ids"]) == BOTS // 2  # duels
        assert summary["live_players_max"] == BOTS  # queued together, played together
        assert summary["reconnects"] == BOTS
        assert summary["actions"].get("ok", 0) > 0
        assert {"open", "set_stops"} <= set(summary["action_types"])
        assert {"close", "partial"} & set(summary["action_types"])
        assert summary["ticks"] > 0
        assert 0 <= summary["tick_latency_p50_ms"] <= summary["tick_latency_p99_ms"]
        for match_id in summary["match_ids"]:
            up.wait_for_line(rf"match {match_id} finished")
    finally:
        assert up.stop() == 0


def test_bench_catalogue_shortens_only_the_modes_countdown(tmp_path: Path) -> None:
    from tradearena.modes import load_catalogue

    path = platform_load.short_countdown(tmp_path / "modes.toml", "arena", 15)
    catalogue = load_catalogue(path)
    assert catalogue.modes["arena"].countdown_ms == 15_000
    assert catalogue.modes["duel"].countdown_ms == load_catalogue(None).modes["duel"].countdown_ms
