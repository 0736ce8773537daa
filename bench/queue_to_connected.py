"""Time from queueing to being connected to one's match server, per player, on each path.

    .venv/bin/python bench/queue_to_connected.py --path kubernetes --bots 100
    .venv/bin/python bench/queue_to_connected.py --path up --bots 100

`kubernetes` starts the whole Kubernetes path on this machine (as `make cluster` does:
control plane, a node whose pods really run, the chart with TLS; needs root) and
`up` the embedded default. Then `tests/js/platform_bots.mjs` signs `--bots` players
in, queues them all at once for duels (one-minute blitz), and each reports the time
from its POST /queue to its match server's socket connected (on the Kubernetes path:
Match written, pod created and started, Ready, address handed out, wss:// handshake).
Prints one JSON line: p50, p99 and max of that time, with the run's other figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BOTS = ROOT / "tests" / "js" / "platform_bots.mjs"


def run_bots(url: str, count: int, extra: list[str]) -> dict[str, Any]:
    argv = ["node", str(BOTS), "--url", url, "--count", str(count), "--mode", "duel"]
    argv += ["--format", "blitz", "--prefix", f"q{os.getpid()}", *extra]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    out = proc.stdout
    summary: dict[str, Any] = json.loads(out[out.index("{") :])
    if proc.returncode != 0:
        summary["stderr_tail"] = proc.stderr[-2000:]
    return summary


def on_kubernetes(count: int) -> dict[str, Any]:
    from tradearena.testing.kube_platform import KubePlatform, PlatformOptions
    from tradearena.testing.platform import short_catalogue

    workdir = Path(tempfile.mkdtemp(prefix="ta-bench-"))
    catalogue = short_catalogue(workdir / "modes.toml").read_text()
    platform = KubePlatform(
        PlatformOptions(
            workdir=workdir,
            name="ta-bench",
            bridge="ta-bench0",
            cidr="10.79.0.0/24",
            service_cidr="10.96.79.0/24",
            ingress_listen=("127.0.79.1", 443),
            catalogue=catalogue,
            # Room for every match pod at once (the chart's default range is 1,001 ports).
            extra_helm_args=("--set", "operator.startupTimeoutSeconds=300"),
        )
    )
    try:
        platform.start()
        summary = run_bots(platform.lobby_url, count, platform.dial_args())
        summary["platform_start_s"] = platform.timings
        return summary
    finally:
        platform.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def on_up(count: int) -> dict[str, Any]:
    from tradearena.testing.platform import UpProcess, short_catalogue

    workdir = Path(tempfile.mkdtemp(prefix="ta-bench-"))
    os.chmod(workdir, 0o755)  # PostgreSQL runs as `postgres` under root
    up = UpProcess(workdir / "var", short_catalogue(workdir / "modes.toml"))
    up.start()
    try:
        return run_bots(up.url, count, [])
    finally:
        up.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", choices=("kubernetes", "up"), required=True)
    parser.add_argument("--bots", type=int, default=10)
    args = parser.parse_args()
    started = time.monotonic()
    summary = on_kubernetes(args.bots) if args.path == "kubernetes" else on_up(args.bots)
    keys = (
        "registered",
        "matches_ended",
        "error_count",
        "queue_to_connected_p50_ms",
        "queue_to_connected_p99_ms",
        "queue_to_connected_max_ms",
        "tick_latency_p50_ms",
        "tick_latency_p99_ms",
        "platform_start_s",
        "stderr_tail",
    )
    report = {"path": args.path, "bots": args.bots} | {k: summary[k] for k in keys if k in summary}
    report["run_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(report))
    return 0 if summary.get("error_count") == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
