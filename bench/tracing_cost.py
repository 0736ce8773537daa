"""The cost of tracing on the hot paths: tracing off and on, in one run, against a real
trace backend (Jaeger, `make jaeger`).

    .venv/bin/python bench/tracing_cost.py                    # table
    .venv/bin/python bench/tracing_cost.py --json --rounds 3 --clients 500

1. Engine actions/s: `engine_bench.bench_actions` (1,000 players, mixed wire actions,
   thread CPU time of each timed call) with the match server's action tracing in the
   timed call, as `matchserver.handlers` does it: a sampling decision per action and,
   for a sampled one, a `match.action` span under the player's `player.connection`
   span, exported by the OTLP/HTTP batch exporter to Jaeger. Modes: tracing off (the
   environment names no exporter: the sampling call alone), on with the default share
   of actions traced (TRADEARENA_TRACE_ACTIONS_RATIO=0.01), on with every action traced
   (1.0). Each mode runs in a fresh process; the modes alternate over `--rounds` rounds
   and the median is reported.
2. Fan-out p99: bench/fanout.py's python match server (1,000 Socket.IO clients, 10
   ticks/s) started with the tracing environment or without it: the match span, a
   `player.connection` span per client and the exporter run beside the broadcast. The
   two modes alternate over the rounds; medians are reported, with each run's p99.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

OTEL_PREFIXES = ("OTEL_", "TRADEARENA_TRACE_")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(OTEL_PREFIXES)}


def engine_child(players: int, actions: int) -> dict[str, Any]:
    """One engine measurement in this process, traced as the environment says."""
    from opentelemetry import trace

    from engine_bench import Submit, bench_actions  # type: ignore[import-not-found]
    from matchserver.engine.match import Match
    from matchserver.handlers import action_span
    from tradearena import tracing
    from tradearena.contracts.tracing import SERVICE_MATCHSERVER

    on = tracing.init_tracing(SERVICE_MATCHSERVER)
    tracer = tracing.tracer("bench.tracing_cost")
    sample = tracing.ActionSampler()
    match_span = tracer.start_span("match", context=tracing.ROOT)
    spans = []

    def wrap(m: Match, submit: Submit) -> Submit:
        parent = trace.set_span_in_context(match_span)
        conns = {p: tracer.start_span("player.connection", context=parent) for p in m.players}
        spans.extend(conns.values())

        def traced(pid: str, wire: dict[str, Any], now: int) -> Any:
            span = action_span(sample, conns[pid], wire)
            if span is None:
                return submit(pid, wire, now)
            with trace.use_span(span, end_on_exit=True):
                ack, events = submit(pid, wire, now)
                span.set_attribute("action.code", str(ack.code))
                return ack, events

        return traced

    result = bench_actions(players, actions, "server", wrap=wrap)
    for span in [*spans, match_span]:
        span.end()
    tracing.shutdown()  # flush to the backend (not timed)
    result["tracing"] = on
    result["actions_ratio"] = sample.ratio if on else 0.0
    return result


def run_engine(env: dict[str, str], players: int, actions: int) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--engine-child"]
    argv += ["--players", str(players), "--actions", str(actions)]
    out = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_fanout(env: dict[str, str], clients: int, measure: int) -> dict[str, Any]:
    argv = [sys.executable, str(ROOT / "bench" / "fanout.py"), "--server", "python", "--json"]
    argv += ["--clients", str(clients), "--measure", str(measure)]
    out = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows: dict[str, Any] = json.loads(out.stdout)
    result: dict[str, Any] = rows["python match server"]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--players", type=int, default=1000)
    ap.add_argument("--actions", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3, help="rounds per mode (alternating)")
    ap.add_argument("--parts", default="engine,fanout", help="engine, fanout or both")
    ap.add_argument("--clients", type=int, default=1000, help="fan-out clients")
    ap.add_argument("--measure", type=int, default=20, help="fan-out seconds measured")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--engine-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.engine_child:
        print(json.dumps(engine_child(args.players, args.actions)))
        return 0

    from tradearena.testing.tracing_backend import start_jaeger

    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "engine": {},
        "fanout": {},
    }
    with tempfile.TemporaryDirectory(prefix="tradearena-tracing-cost-") as tmp:
        jaeger = start_jaeger(Path(tmp) / "jaeger")
        try:
            base = _clean_env()
            engine_modes = {
                "off": base,
                "on, 1% of actions": {**base, **jaeger.otel_env(actions_ratio=0.01)},
                "on, every action": {**base, **jaeger.otel_env(actions_ratio=1.0)},
            }
            samples: dict[str, list[int]] = {mode: [] for mode in engine_modes}
            for _ in range(args.rounds if "engine" in args.parts else 0):
                for mode, env in engine_modes.items():
                    r = run_engine(env, args.players, args.actions)
                    samples[mode].append(int(r["actions_per_s"]))
            off = statistics.median(samples["off"] or [1])
            for mode, values in samples.items():
                if not values:
                    continue
                median = statistics.median(values)
                report["engine"][mode] = {
                    "actions_per_s": round(median),
                    "runs": values,
                    "vs_off_pct": round(100 * (median - off) / off, 1),
                }
            fanout_modes = {"off": base, "on": {**base, **jaeger.otel_env(actions_ratio=0.01)}}
            runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in fanout_modes}
            for _ in range(args.rounds if "fanout" in args.parts else 0):
                for mode, env in fanout_modes.items():
                    runs[mode].append(run_fanout(env, args.clients, args.measure))
            for mode, rows in runs.items():
                if not rows:
                    continue
                report["fanout"][mode] = {
                    k: statistics.median(float(r.get(k) or 0) for r in rows)
                    for k in ("p50_ms", "p99_ms", "max_ms", "delivered_per_s", "server_cpu_pct")
                }
                report["fanout"][mode]["p99_runs"] = [r.get("p99_ms") for r in rows]
            import asyncio

            report["services_in_backend"] = asyncio.run(jaeger.services())
        finally:
            jaeger.stop()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"machine: {report['machine']}")
    print(f"engine, {args.players} players, {args.actions} actions, median of {args.rounds}")
    for mode, row in report["engine"].items():
        print(f"  {mode:<20} {row['actions_per_s']:>8} actions/s  {row['vs_off_pct']:+.1f} %")
    print(f"fan-out, {args.clients} clients, {args.measure} s measured")
    for mode, row in report["fanout"].items():
        print(
            f"  {mode:<4} p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  "
            f"max {row['max_ms']} ms  cpu {row['server_cpu_pct']} %"
        )
    print(f"services in the backend: {', '.join(report['services_in_backend'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
