"""Fan-out: 1,000 Socket.IO clients in one match at 10 ticks/s, against a Node reference.

    .venv/bin/python bench/fanout.py                 # python match server, then Node reference
    .venv/bin/python bench/fanout.py --hz 50 --server python

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
"""

from __future__ import annotations

import argparse
import json
import os
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
        env={**os.environ, "ACK": "1" if ack else "0"},
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
    load.wait(30)
    return result


def bench_python(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    redis = LocalRedis(workdir / "redis", appendonly=False)
    redis.start()
    signer = Signer.from_pem(generate_private_key_pem())
    (workdir / "public.pem").write_bytes(signer.public_pem())
    players = [f"p{i}" for i in range(args.clients)]
    tokens = [signer.match_token("bench", p, ttl_s=3600) for p in players]
    tokens_file = workdir / "tokens.json"
    tokens_file.write_text(json.dumps(tokens))
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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
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
    if py and "idle_rss_mb" in py:
        print(f"python match server idle RSS (ready, no client): {py['idle_rss_mb']} MB")
    if py and "conflated_per_s" in py:
        print(
            f"python match server: {py['conflated_per_s']} conflated ticks+boards/s, "
            f"{py.get('acks_per_s', 0):.0f} tick_acks/s sent by the clients, "
            f"{py['stuck_disconnects']} clients cut off as stuck"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
