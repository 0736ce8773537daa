"""Fan-out: 1,000 Socket.IO clients in one match at 10 ticks/s, against a Node reference.

    .venv/bin/python bench/fanout.py                 # python match server, then Node reference
    .venv/bin/python bench/fanout.py --hz 50 --server python
    .venv/bin/python bench/fanout.py --server python --spectators 1000
    .venv/bin/python bench/fanout.py --compare-spectators 1000 --runs 3   # alternating

The load generator is a Node process with stock socket.io-client connections
(tests/js/fanout_load.mjs); it measures delivered messages/s and the latency
(age) of `tick` events from the server's timestamp. Its clients acknowledge
ticks as the match server's flow control asks (docs/matchserver.md); with
--no-ack they never do, as clients written before it. The Python side is the real
match server (arena mode, synthetic feed at --hz official ticks/s); the Node
side is a minimal socket.io 4 server broadcasting the same tick
(tests/js/reference_server.mjs). Also reports the match server's CPU and RSS,
and the ticks it conflated (left out for clients that were behind) and the
clients it cut off as stuck, from its /metrics.

Spectators (docs/matchserver.md, "Spectators"): `--spectators N` adds N spectator
connections (tokens the bench signs) to the same match, with a catalogue whose
spectator delay is `--spectate-delay-ms` (so the delayed view follows the live match
during the run) and whose cap takes them all; the players' figures stay the players'
alone. `--compare-spectators N --runs R` alternates R runs without and R runs with N
spectators (a fresh server each run) and prints every run and the spread per side.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tradearena.launcher.localservices import LocalRedis, free_port
from tradearena.tokens import Signer, generate_private_key_pem

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "tests" / "js"
CLI = str(Path(sys.executable).parent / "tradearena")
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("server not ready")


def scrape(url: str) -> dict[str, float]:
    """The match server's counters, summed over labels."""
    totals: dict[str, float] = {}
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            name = name.split("{", 1)[0]
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def run_load(
    url: str,
    tokens_file: str,
    clients: int,
    warmup: int,
    measure: int,
    server_pid: int,
    *,
    ack: bool = True,
    metrics_url: str | None = None,
    spectator_tokens: str | None = None,
) -> dict[str, Any]:
    before: dict[str, float] = {}
    load = subprocess.Popen(
        [
            "node",
            str(JS / "fanout_load.mjs"),
            url,
            "/match",
            tokens_file,
            str(clients),
            str(warmup),
            str(measure),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "ACK": "1" if ack else "0",
            **({"SPECTATOR_TOKENS": spectator_tokens} if spectator_tokens else {}),
        },
    )
    assert load.stdout is not None
    cpu0 = wall0 = 0.0
    result: dict[str, Any] = {}
    for line in load.stdout:
        msg = json.loads(line)
        if msg.get("measuring"):
            cpu0, wall0 = proc_cpu_s(server_pid), time.monotonic()
            if metrics_url:
                before = scrape(metrics_url)
        else:
            result = msg
            cpu1, wall1 = proc_cpu_s(server_pid), time.monotonic()
            result["server_cpu_pct"] = round(100 * (cpu1 - cpu0) / max(1e-9, wall1 - wall0), 1)
            result["server_rss_mb"] = round(proc_rss_mb(server_pid), 1)
            if metrics_url:
                after = scrape(metrics_url)
                seconds = max(1e-9, wall1 - wall0)
                conflated = after.get("tradearena_match_conflated_total", 0.0) - before.get(
                    "tradearena_match_conflated_total", 0.0
                )
                result["conflated_per_s"] = round(conflated / seconds)
                result["stuck_disconnects"] = int(
                    after.get("tradearena_match_stuck_disconnects_total", 0)
                )
                skipped = after.get(
                    "tradearena_match_spectator_frames_skipped_total", 0.0
                ) - before.get("tradearena_match_spectator_frames_skipped_total", 0.0)
                result["spectator_frames_skipped"] = int(skipped)
                result["spectator_refusals"] = int(
                    after.get("tradearena_match_spectator_refusals_total", 0)
                )
    load.wait(30)
    return result


def spectate_catalogue(workdir: Path, delay_ms: int, cap: int) -> Path:
    """The packaged catalogue with the bench's spectator delay and a cap that takes all."""
    text = (ROOT / "tradearena" / "modes.toml").read_text()
    head, table, rest = text.partition("[rules.spectate]")
    rest = re.sub(r"(?m)^delay_ms = \d+", f"delay_ms = {delay_ms}", rest, count=1)
    rest = re.sub(r"(?m)^cap = \d+", f"cap = {max(cap, 1)}", rest, count=1)
    text = head + table + rest
    path = workdir / "modes.toml"
    path.write_text(text)
    return path


def bench_python(
    args: argparse.Namespace, workdir: Path, spectators: int | None = None
) -> dict[str, Any]:
    spectators = args.spectators if spectators is None else spectators
    workdir.mkdir(parents=True, exist_ok=True)
    redis = LocalRedis(workdir / "redis", appendonly=False)
    redis.start()
    signer = Signer.from_pem(generate_private_key_pem())
    (workdir / "public.pem").write_bytes(signer.public_pem())
    players = [f"p{i}" for i in range(args.clients)]
    tokens = [signer.match_token("bench", p, ttl_s=3600) for p in players]
    tokens_file = workdir / "tokens.json"
    tokens_file.write_text(json.dumps(tokens))
    spectator_file = None
    if spectators:
        watchers = [signer.spectator_token("bench", f"s{i}", 3600) for i in range(spectators)]
        spectator_file = workdir / "spectators.json"
        spectator_file.write_text(json.dumps(watchers))
    catalogue = spectate_catalogue(workdir, args.spectate_delay_ms, spectators)
    port, admin_port = free_port(), free_port()
    env = {
        **os.environ,
        "TRADEARENA_MATCH_ID": "bench",
        "TRADEARENA_MODE": "arena",
        "TRADEARENA_PLAYERS": ",".join(players),
        "TRADEARENA_DURATION_MS": str(3_600_000),
        "TRADEARENA_JOIN_TIMEOUT_MS": str(3_600_000),
        "TRADEARENA_REDIS_URL": redis.url,
        "TRADEARENA_PORT": str(port),
        "TRADEARENA_ADMIN_PORT": str(admin_port),  # /metrics
        "TRADEARENA_HOST": "127.0.0.1",
        "TRADEARENA_PUBLIC_KEY_FILE": str(workdir / "public.pem"),
        "TRADEARENA_FEED_SOURCE": "synthetic",
        "TRADEARENA_SYNTHETIC_INTERVAL_MS": str(1000 // args.hz),
        "TRADEARENA_LOG_LEVEL": "WARNING",
        "TRADEARENA_CATALOGUE": str(catalogue),
    }
    with (workdir / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [CLI, "matchserver"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, server)
        idle_rss = proc_rss_mb(server.pid)
        result = run_load(
            url,
            str(tokens_file),
            args.clients,
            args.warmup,
            args.measure,
            server.pid,
            ack=not args.no_ack,
            metrics_url=f"http://127.0.0.1:{admin_port}",
            spectator_tokens=str(spectator_file) if spectator_file else None,
        )
        result["idle_rss_mb"] = round(idle_rss, 1)
        return result
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        redis.stop()


def bench_node(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(
        ["node", str(JS / "reference_server.mjs"), str(port), str(args.hz)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "READY"
        return run_load(
            f"http://127.0.0.1:{port}", "-", args.clients, args.warmup, args.measure, server.pid
        )
    finally:
        server.terminate()
        server.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--hz", type=int, default=10, help="official ticks per second")
    parser.add_argument("--warmup", type=int, default=5, help="seconds")
    parser.add_argument("--measure", type=int, default=20, help="seconds")
    parser.add_argument("--server", choices=("python", "node", "both"), default="both")
    parser.add_argument(
        "--no-ack", action="store_true", help="clients never acknowledge ticks (older clients)"
    )
    parser.add_argument("--spectators", type=int, default=0, help="spectators of the match")
    parser.add_argument(
        "--spectate-delay-ms", type=int, default=5000, help="the spectators' delay in the bench"
    )
    parser.add_argument(
        "--compare-spectators",
        type=int,
        default=0,
        metavar="N",
        help="alternate runs without and with N spectators (python server)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per side of --compare-*")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.compare_spectators:
        return compare_spectators(args)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="tradearena-fanout-") as tmp:
        if args.server in ("python", "both"):
            rows["python match server"] = bench_python(args, Path(tmp))
        if args.server in ("node", "both"):
            rows["node socket.io 4 reference"] = bench_node(args)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    acking = "clients never acknowledge" if args.no_ack else "clients acknowledge ticks"
    print(f"{args.clients} clients, {args.hz} ticks/s, {args.measure} s measured, {acking}")
    print(
        f"{'server':<28}{'msg/s':>10}{'ticks/cl/s':>12}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'max ms':>8}{'cpu %':>7}{'rss MB':>8}"
    )
    for name, r in rows.items():
        print(
            f"{name:<28}{r.get('delivered_per_s', 0):>10.0f}{r.get('ticks_per_client_per_s', 0):>12.2f}"
            f"{r.get('p50_ms')!s:>8}{r.get('p99_ms')!s:>8}{r.get('max_ms')!s:>8}"
            f"{r.get('server_cpu_pct')!s:>7}{r.get('server_rss_mb')!s:>8}"
        )
    py = rows.get("python match server")
    if py and py.get("spectators"):
        print(
            f"python match server: {py['spectators']} spectators, "
            f"{py['spectator_frames_per_s']:.0f} frames/s delivered, late by "
            f"p50 {py['spectator_late_p50_ms']} / p99 {py['spectator_late_p99_ms']} ms, "
            f"{py.get('spectator_frames_skipped', 0)} match frames skipped for load"
        )
    if py and "idle_rss_mb" in py:
        print(f"python match server idle RSS (ready, no client): {py['idle_rss_mb']} MB")
    if py and "conflated_per_s" in py:
        print(
            f"python match server: {py['conflated_per_s']} conflated ticks+boards/s, "
            f"{py.get('acks_per_s', 0):.0f} tick_acks/s sent by the clients, "
            f"{py['stuck_disconnects']} clients cut off as stuck"
        )
    return 0


SIDES = ("players only", "players + spectators")
FIGURES = (
    ("p50_ms", "tick p50 ms"),
    ("p99_ms", "tick p99 ms"),
    ("delivered_per_s", "player msg/s"),
    ("server_cpu_pct", "server cpu %"),
)


def compare_spectators(args: argparse.Namespace) -> int:
    """Alternate players-only and players+spectators runs; every run, then the spread."""
    runs: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="tradearena-fanout-") as tmp:
        for i in range(args.runs):
            for side, spectators in zip(SIDES, (0, args.compare_spectators), strict=True):
                r = bench_python(args, Path(tmp) / f"run-{i}-{spectators}", spectators)
                r["loadavg_1m"] = round(os.getloadavg()[0], 2)  # mostly the run itself
                runs.append((side, r))
                print(json.dumps({"run": i + 1, "side": side, **r}), file=sys.stderr)
    if args.json:
        print(json.dumps([{"side": side, **r} for side, r in runs], indent=2))
        return 0
    print(
        f"{args.clients} players, {args.hz} ticks/s, {args.measure} s measured per run, "
        f"{args.compare_spectators} spectators (delay {args.spectate_delay_ms} ms), "
        f"{args.runs} alternating runs per side"
    )
    print(
        f"{'run':<4}{'side':<22}{'p50 ms':>8}{'p99 ms':>8}{'msg/s':>9}{'cpu %':>7}"
        f"{'frames/s':>10}{'skipped':>9}{'load1':>7}"
    )
    for n, (side, r) in enumerate(runs, 1):
        print(
            f"{n:<4}{side:<22}{r.get('p50_ms')!s:>8}{r.get('p99_ms')!s:>8}"
            f"{r.get('delivered_per_s', 0):>9.0f}{r.get('server_cpu_pct')!s:>7}"
            f"{r.get('spectator_frames_per_s', 0):>10.0f}"
            f"{r.get('spectator_frames_skipped', 0)!s:>9}{r['loadavg_1m']:>7}"
        )
    print("spread (min / median / max):")
    for side in SIDES:
        rows = [r for s, r in runs if s == side]
        parts = []
        for key, label in FIGURES:
            values = [float(r[key]) for r in rows if r.get(key) is not None]
            if values:
                parts.append(
                    f"{label} {min(values):.0f} / {statistics.median(values):.0f} / "
                    f"{max(values):.0f}"
                )
        print(f"  {side}: " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
