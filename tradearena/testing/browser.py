"""Playwright scripts in headless Chromium (`tests/js/browser_*.mjs`) against a running
lobby: the one runner the browser tests share, and the screenshots each must leave."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tradearena.testing.paths import REPO

CHROMIUM = Path("/usr/bin/chromium")
JS = REPO / "tests" / "js"

# Every step a played duel must have left a screenshot of.
STEPS = (
    "01-lobby-a",
    "02-queued-a",
    "03-live-a",
    "05-position-a",
    "07-peek-a",
    "08-results-a",
    "08-results-b",
)


def run_browser_script(
    script: str,
    url: str,
    artifacts: Path,
    args: Sequence[str] = (),
    shots: Sequence[str] = (),
    timeout: float = 300,
) -> tuple[dict[str, Any], str, list[str]]:
    """Run `tests/js/<script>` against a lobby with a fresh `artifacts` directory: its
    summary (the last line of its output), its step log and the screenshots it left.
    Fails the test when a check in the script failed or one of `shots` is missing."""
    assert CHROMIUM.is_file(), "no /usr/bin/chromium: run scripts/bootstrap.sh as root"
    assert (JS / "node_modules" / "playwright-core").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    if artifacts.exists():
        shutil.rmtree(artifacts)
    artifacts.mkdir(parents=True)
    proc = subprocess.run(
        ["node", str(JS / script), url, str(artifacts), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"the browser script printed nothing:\n{proc.stderr[-4000:]}"
    summary: dict[str, Any] = json.loads(lines[-1])
    assert proc.returncode == 0 and summary["ok"], f"{summary}\n{proc.stderr[-6000:]}"
    found = sorted(p.name for p in artifacts.glob("*.png"))
    for shot in shots:
        assert shot in found, (shot, found)
    return summary, proc.stderr, found


def run_browser_match(
    url: str, artifacts: Path, network: Sequence[str] = (), timeout: float = 480
) -> tuple[dict[str, Any], str]:
    """The script's summary and its step log; fails the test when the duel failed.

    `network`: chromium.mjs's options (`--host-resolver-rules`, `--spki`)."""
    summary, log, shots = run_browser_script(
        "browser_match.mjs",
        url,
        artifacts,
        network,
        [f"{step}.png" for step in STEPS],
        timeout,
    )
    assert len(shots) == summary["screenshots"] >= 10, shots
    assert "FAILED" not in log
    return summary, log


# The screenshots the chart script leaves (`tests/js/browser_chart.mjs`), by width.
CHART_SHOTS = (
    "desktop-01-live.png",
    "desktop-02-history-1m.png",
    "desktop-03-position.png",
    "desktop-04-dragged.png",
    "desktop-05-reloaded.png",
    "desktop-06-peek.png",
    "phone-01-live.png",
    "phone-03-position.png",
    "phone-04-dragged.png",
    "phone-06-peek.png",
)


def run_browser_chart(
    url: str, artifacts: Path, timeout: float = 300
) -> tuple[dict[str, Any], str]:
    """`tests/js/browser_chart.mjs` against a lobby: its summary and step log."""
    summary, log, _ = run_browser_script(
        "browser_chart.mjs", url, artifacts, shots=CHART_SHOTS, timeout=timeout
    )
    return summary, log


# The screenshots the private match script leaves (`tests/js/browser_private.mjs`).
PRIVATE_SHOTS = (
    "01-created-host.png",
    "02-invited-guest.png",
    "03-room-host.png",
    "03-room-guest.png",
    "04-live-host.png",
    "05-results-host.png",
    "05-results-guest.png",
)


def run_browser_private(
    url: str, artifacts: Path, timeout: float = 240
) -> tuple[dict[str, Any], str]:
    """`tests/js/browser_private.mjs` against a lobby: its summary and step log."""
    summary, log, _ = run_browser_script(
        "browser_private.mjs", url, artifacts, shots=PRIVATE_SHOTS, timeout=timeout
    )
    return summary, log


# The screenshots the spectator script leaves (`tests/js/browser_spectate.mjs`).
SPECTATE_SHOTS = (
    "01-live-list.png",
    "02-watching.png",
    "03-phone-list-counts.png",
    "04-phone-watching.png",
)


def run_browser_spectate(
    url: str, artifacts: Path, delay_ms: int, timeout: float = 180
) -> tuple[dict[str, Any], str]:
    """`tests/js/browser_spectate.mjs` against a lobby whose duels delay spectators by
    `delay_ms`: its summary and step log."""
    summary, log, _ = run_browser_script(
        "browser_spectate.mjs", url, artifacts, [str(delay_ms)], SPECTATE_SHOTS, timeout
    )
    return summary, log
