"""Concurrent bot players on the embedded default (`tradearena up`), one machine.

    .venv/bin/python bench/platform_load.py --players 1000

Starts `tradearena up` in a fresh data directory, then the bot players in
`arena` matches (up to 100 players per match by default; `--mode duel`: two per
match), and while they play
samples the CPU and RSS of every process of the platform (up, Redis,
PostgreSQL, feed relay, results worker, match servers) and of the load
generator. Reports players, matches, errors, tick latency (p50/p99, from the
bots) and resource use.

The load generator is `tests/js/platform_bots.mjs` (`--generator node`, the
default): the same protocol and play as `tradearena bots`, on the stock
socket.io-client, light enough to leave the machine to the platform; all
players sign in first (argon2id hashing paces that), then queue together, so
everyone plays at the same time. `--generator python` runs `tradearena bots`
processes instead (each decodes every tick of its players: four processes
saturate two cores around 1,000 players).

Matches run on `up`'s pool of warm match servers (`--pool-capacity`, `--pool-buffer`
passed on); `--dedicated` runs one match-server process per match instead. The
report counts the match-server processes at their peak.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CLI = str(Path(sys.executable).parent / "tradearena")
ROOT = Path(__file__).resolve().parents[1]
NODE_BOTS = ROOT / "tests" / "js" / "platform_bots.mjs"
CLK = os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        out.add(pid)
        todo.extend(children.get(pid, []))
    return out


def usage(pids: set[int]) -> tuple[float, float]:
    """(cpu seconds, rss MB) summed over pids."""
    cpu = rss = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / CLK
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
        except OSError:
            continue
    return cpu, rss


def postgres_pids() -> set[int]:
    # PostgreSQL runs as its own user and is not a child of `up` when we are root.
    out = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if "\nName:\tpostgres\n" in "\n" + status.read_text():
                out.add(int(status.parent.name))
        except OSError:
            continue
    return out


def short_countdown(path: Path, mode: str, seconds: int) -> Path:
    """The packaged catalogue with a shorter countdown for `mode`. Players queue in one
    burst; groups form as soon as they reach the recommended size, and the last, smaller
    group would otherwise wait the whole countdown (two minutes in `arena`) before its
    match starts, leaving little time in which every player is live at once."""
    text = (ROOT / "tradearena" / "modes.toml").read_text()
    section = f"[modes.{mode}]"
    head, found, tail = text.partition(section)
    if not found:
        raise SystemExit(f"no mode {mode!r} in the catalogue")
    tail, n = re.subn(r"(?m)^countdown_ms = \d+", f"countdown_ms = {seconds * 1000}", tail, count=1)
    if not n:
        raise SystemExit(f"mode {mode!r} has no countdown_ms")
    path.write_text(head + section + tail)
    return path


def match_servers(pids: set[int]) -> set[int]:
    """The `tradearena matchserver` processes among pids."""
    found = set()
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"matchserver" in argv:
            found.add(pid)
    return found


def log_errors(logs: Path) -> dict[str, int]:
    """ERROR lines and tracebacks in the platform's logs, per file (none is the goal)."""
    out: dict[str, int] = {}
    for path in logs.rglob("*.log"):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        n = len(re.findall(r'"level(?:name)?": "(?:ERROR|CRITICAL)"|^Traceback \(', text, re.M))
        if n:
            out[str(path.relative_to(logs))] = n
    return out


def generator(args: argparse.Namespace, url: str, count: int, prefix: str) -> list[str]:
    common = [
        "--url",
        url,
        "--count",
        str(count),
        "--mode",
        args.mode,
        "--format",
        args.format,
        "--prefix",
        prefix,
    ]
    if args.generator == "node":
        return ["node", str(NODE_BOTS), *common]
    return [CLI, "bots", *common, "--json"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--players", type=int, default=1000)
    parser.add_argument("--mode", default="arena")
    parser.add_argument("--format", default="blitz")
    parser.add_argument("--generator", choices=("node", "python"), default="node")
    parser.add_argument(
        "--countdown-s",
        type=int,
        default=15,
        help="the mode's matchmaking countdown in this run's catalogue (0: the packaged one)",
    )
    parser.add_argument(
        "--dedicated",
        action="store_true",
        help="up runs one match-server process per match (default: its pool)",
    )
    parser.add_argument("--pool-capacity", type=int, default=None, help="up's, if given")
    parser.add_argument("--pool-buffer", type=int, default=None, help="up's, if given")
    parser.add_argument(
        "--procs",
        type=int,
        default=None,
        help="bot processes (default: 1 with node, 4 with python)",
    )
    args = parser.parse_args()
    if args.procs is None:
        args.procs = 1 if args.generator == "node" else 4
    base = Path(tempfile.mkdtemp(prefix="tradearena-load-"))
    base.chmod(0o755)
    port = 18000 + os.getpid() % 1000
    # A load test registers every bot from one address: lift the per-IP sign-up budget.
    env = {
        **os.environ,
        "TRADEARENA_REGISTER_LIMIT_IP": str(10 * args.players),
        "TRADEARENA_RATE_LIMIT_IP": str(100 * args.players),
    }
    catalogue: list[str] = []
    if args.countdown_s:
        catalogue = [
            "--catalogue",
            str(short_countdown(base / "modes.toml", args.mode, args.countdown_s)),
        ]
    runtime = ["--dedicated"] if args.dedicated else []
    for flag, value in (
        ("--pool-capacity", args.pool_capacity),
        ("--pool-buffer", args.pool_buffer),
    ):
        if value is not None:
            runtime += [flag, str(value)]
    up = subprocess.Popen(
        [
            CLI,
            *catalogue,
            "up",
            "--data-dir",
            str(base / "var"),
            "--lobby-port",
            str(port),
            "--log-level",
            "WARNING",
            *runtime,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert up.stdout is not None
    lines: list[str] = []
    for line in up.stdout:
        lines.append(line)
        if line.startswith("READY"):
            break
    threading.Thread(target=lambda: lines.extend(up.stdout or []), daemon=True).start()
    started = time.monotonic()
    per = args.players // args.procs
    procs = [
        subprocess.Popen(
            generator(args, f"http://127.0.0.1:{port}", per, f"load{os.getpid()}-{i}"),
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(args.procs)
    ]
    samples: list[dict[str, float]] = []
    servers_peak = 0
    prev: tuple[float, float, float] | None = None
    while any(b.poll() is None for b in procs):
        time.sleep(5)  # a sampling period, not a synchronisation
        platform = descendants(up.pid) | postgres_pids()
        servers_peak = max(servers_peak, len(match_servers(platform)))
        cpu, rss = usage(platform)
        bcpu, brss = usage(set().union(*(descendants(b.pid) for b in procs)))
        now = time.monotonic()
        if prev is not None:
            samples.append(
                {
                    "t": now - started,
                    "platform_cpu_pct": 100 * (cpu - prev[0]) / (now - prev[2]),
                    "platform_rss_mb": rss,
                    "bots_rss_mb": brss,
                    "bots_cpu_pct": 100 * (bcpu - prev[1]) / (now - prev[2]),
                }
            )
        prev = (cpu, bcpu, now)
    parts = [json.loads(b.communicate()[0]) for b in procs]
    summary: dict[str, Any] = {
        "matches_ended": sum(p["matches_ended"] for p in parts),
        "error_count": sum(p["error_count"] for p in parts),
        "errors": [e for p in parts for e in p["errors"]],
        "actions": {
            k: sum(p["actions"].get(k, 0) for p in parts)
            for k in {k for p in parts for k in p["actions"]}
        },
        # latency percentiles: the worst process's, a conservative summary
        "tick_latency_p50_ms": max((p["tick_latency_p50_ms"] or 0) for p in parts),
        "tick_latency_p99_ms": max((p["tick_latency_p99_ms"] or 0) for p in parts),
    }
    up.send_signal(signal.SIGINT)
    up.wait(120)
    matches = sum(1 for line in lines if re.search(r"^match \S+ started", line))
    peak = max(samples, key=lambda s: s["platform_rss_mb"]) if samples else {}
    # The window in which every player was live (the Node generator reports it): from the
    # last player going live to the first match ending.
    live_from = [p.get("all_live_after_s") for p in parts]
    live_to = [p.get("first_end_after_s") for p in parts]
    all_live: float | None = None
    window: list[dict[str, float]] = []
    if all(isinstance(x, (int, float)) for x in live_from + live_to):
        all_live = max(float(x) for x in live_from)
        first_end = min(float(x) for x in live_to)
        window = [s for s in samples if all_live + 5 <= s["t"] <= first_end]

    def mean(rows: list[dict[str, float]], key: str) -> float | None:
        return round(sum(r[key] for r in rows) / len(rows), 1) if rows else None

    def top(rows: list[dict[str, float]], key: str) -> float | None:
        return round(max(r[key] for r in rows), 1) if rows else None

    report = {
        "generator": args.generator,
        "players": per * args.procs,
        "bot_processes": args.procs,
        "matches": matches,
        "runtime": "dedicated" if args.dedicated else "pool",
        "match_server_processes_peak": servers_peak,
        "players_live_at_once": sum(p.get("live_players_max", 0) for p in parts) or None,
        "players_played_to_the_end": summary["matches_ended"],
        "errors": summary["error_count"],
        "first_errors": summary["errors"][:5],
        "actions": summary["actions"],
        "tick_latency_p50_ms": summary["tick_latency_p50_ms"],
        "tick_latency_p99_ms": summary["tick_latency_p99_ms"],
        "platform_cpu_pct_mean": mean(samples, "platform_cpu_pct"),
        "platform_cpu_pct_max": top(samples, "platform_cpu_pct"),
        "platform_cpu_pct_mean_all_live": mean(window, "platform_cpu_pct"),
        "platform_rss_mb_peak": round(peak.get("platform_rss_mb", 0), 1),
        "bots_cpu_pct_mean": mean(samples, "bots_cpu_pct"),
        "bots_cpu_pct_max": top(samples, "bots_cpu_pct"),
        "bots_rss_mb_peak": top(samples, "bots_rss_mb"),
        "all_signed_in_after_s": max((p.get("signed_in_after_s") or 0) for p in parts) or None,
        "all_live_after_s": all_live,
        "seconds": round(time.monotonic() - started, 1),
        "platform_log_errors": log_errors(base / "var" / "logs"),
        "data_dir": str(base),
    }
    print(json.dumps(report, indent=2))
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
