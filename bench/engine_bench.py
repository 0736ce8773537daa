"""Match engine benchmark: official ticks with 1,000 open positions, and actions per second.

    .venv/bin/python bench/engine_bench.py                 # table, exit 1 if a target is missed
    .venv/bin/python bench/engine_bench.py --json          # machine-readable
    .venv/bin/python bench/engine_bench.py --players 20 --ticks 50 --actions 500

Everything runs in this process, on one core, against the pure engine
(`matchserver.engine.match.Match`) with the `arena` mode's rules (price delay 5 s).

1. Tick latency. A live arena match; every player holds a position with a
   stop-loss and a take-profit. A price is fed every 100 ms and becomes official
   `price_delay` later; the timed call is the `advance` that releases exactly one
   official tick (trigger checks, tick and fill events). Nothing else is due in it
   except the engine's own timers (charge regeneration once a minute).
   - quiet: a random walk (sd 5 USDT a tick around 100,000) with SL/TP 3-6 % away,
     so a tick rarely crosses a level: the cost of a tick with N open positions;
   - triggering: the price trends up 1 USDT a tick and every position's nearest
     level is 40-160 ticks ahead, so about 1 % of the positions fire each tick;
     a player whose position fired reopens at once (untimed).
2. Actions per second. Wire dicts (parsed and validated by the engine, as the
   server hands them over) submitted round-robin over every player: open with
   SL/TP, set_stops, Peek, partial close, shield, close, then again. Game time
   advances so that a player acts every 3.2 s or more: the 3 s trade cooldown and
   the 10/s rate limit do not dominate. Prices are fed between actions (untimed)
   so the feed never goes stale. Rejections (Peek not ready, no charges, no
   position after a trigger) are counted and reported separately.

Timings are the CPU time of this thread (`time.thread_time_ns`) around each timed
call, so that other load on a shared machine does not count; wall-clock figures
are reported next to them (`wall_*` in --json). The cost of reading the clocks
themselves (a system call for the thread CPU clock, about 1 us on a VM) is measured
on an empty region first and subtracted from every sample.

Targets: median official tick with 1,000 open positions under 1 ms; at least
20,000 actions/s. The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from matchserver import heap
from matchserver.engine.events import Ack, Event
from matchserver.engine.match import Match
from matchserver.runner import RunnerConfig
from tradearena.contracts.phases import GamePhase
from tradearena.modes import Rules, default_catalogue

MODE = "arena"
TICK_MS = 100  # a feed price every 100 ms of game time
P0_CENTS = 10_000_000  # 100,000.00 USDT
TARGET_TICK_US = 1000.0
TARGET_ACTIONS_PER_S = 20_000.0
TRIGGER_WARMUP_TICKS = 200


def _price(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _clock_overhead() -> tuple[float, float]:
    """Median (CPU ns, wall ns) that an empty timed region reads, for subtraction."""
    cpu: list[int] = []
    wall: list[int] = []
    for _ in range(20_000):
        c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        cpu.append(c1 - c0)
        wall.append(w1 - w0)
    return statistics.median(cpu), statistics.median(wall)


CLOCK_CPU_NS, CLOCK_WALL_NS = 0.0, 0.0
# Collector policies: "server" is the match server's (matchserver.heap): freeze once
# the match is built and after every snapshot; "default" leaves CPython's alone.
SNAPSHOT_EVERY = RunnerConfig.snapshot_every_entries


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rules() -> Rules:
    return default_catalogue().mode(MODE).rules


class Driver:
    """A live arena match fed a price every TICK_MS; step k happens at t = k * TICK_MS."""

    def __init__(self, players: int, steps: int, seed: int, gc_policy: str) -> None:
        self.gc_policy = gc_policy
        self.rules = _rules()
        self.delay_steps = -(-self.rules.price_delay_ms // TICK_MS)
        self.ids = [f"p{i:04d}" for i in range(players)]
        duration = (steps + self.delay_steps + TRIGGER_WARMUP_TICKS + 100) * TICK_MS + 60_000
        self.m = Match("bench", MODE, self.rules, self.ids, duration, 0)
        self.rng = random.Random(seed)
        self.k = 0
        self.now = 0  # game time of the last step
        self.seq = 0
        self.frozen_at = 0
        for pid in self.ids:
            self.m.connect(pid, 0)

    def step(self, cents: int) -> tuple[float, float, list[Any]]:
        """Release the official tick due now (timed: CPU and wall us), then feed the next
        live price."""
        t = self.now = self.k * TICK_MS
        c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        events = self.m.advance(t)
        w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        self.m.feed(_price(cents), t)
        self.k += 1
        self.housekeeping()
        cpu = max(0.0, c1 - c0 - CLOCK_CPU_NS) / 1000.0
        return cpu, max(0.0, w1 - w0 - CLOCK_WALL_NS) / 1000.0, events

    def housekeeping(self) -> None:
        """Untimed, between inputs: what the server does after each snapshot."""
        if self.gc_policy == "server" and len(self.m.log) - self.frozen_at >= SNAPSHOT_EVERY:
            self.frozen_at = len(self.m.log)
            heap.freeze()

    def coid(self, pid: str) -> str:
        self.seq += 1
        return f"{pid}-{self.seq}"

    def open_order(self, pid: str, side: str, sl: Decimal, tp: Decimal) -> dict[str, Any]:
        return {
            "type": "open",
            "client_order_id": self.coid(pid),
            "side": side,
            "margin": str(self.rng.randrange(100, 1001)),
            "leverage": self.rng.randrange(2, 11),
            "stop_loss": str(sl),
            "take_profit": str(tp),
        }


def _go_live(d: Driver, cents: int) -> None:
    """Start, then feed until the first official price is out (delay_steps ticks)."""
    d.m.start(0)
    while d.m.official is None or d.m.frozen:
        d.step(cents)
    gc.unfreeze()  # whatever an earlier scenario left
    gc.collect()
    if d.gc_policy == "server":
        heap.freeze()
    assert d.m.phase is GamePhase.LIVE


def _fired(events: list[Any]) -> list[str]:
    return [
        e.data["player"]
        for e in events
        if e.kind == "fill" and e.data["reason"] in ("stop_loss", "take_profit", "liquidation")
    ]


def _summary(
    samples: list[float], wall: list[float], fired: int, open_counts: list[int]
) -> dict[str, Any]:
    mean = statistics.fmean(samples)
    return {
        "ticks": len(samples),
        "median_us": round(statistics.median(samples), 2),
        "p99_us": round(_pct(samples, 0.99), 2),
        "mean_us": round(mean, 2),
        "max_us": round(max(samples), 2),
        "ticks_per_s": round(1e6 / mean),
        "wall_median_us": round(statistics.median(wall), 2),
        "wall_p99_us": round(_pct(wall, 0.99), 2),
        "open_positions_min": min(open_counts),
        "open_positions_mean": round(statistics.fmean(open_counts), 1),
        "fired": fired,
        "fired_per_tick": round(fired / len(samples), 3),
    }


def _open_count(m: Match) -> int:
    return sum(1 for p in m.players.values() if p.position is not None)


def bench_ticks_quiet(players: int, ticks: int, gc_policy: str, seed: int = 1) -> dict[str, Any]:
    d = Driver(players, ticks, seed, gc_policy)
    cents = P0_CENTS
    _go_live(d, cents)
    official = d.m.official
    assert official is not None
    base = int(official * 100)
    for pid in d.ids:
        side = d.rng.choice(("long", "short"))
        near = base * d.rng.randrange(300, 601) // 10_000  # 3-6 % away
        far = base * d.rng.randrange(300, 601) // 10_000
        below, above = _price(base - near), _price(base + far)
        sl, tp = (below, above) if side == "long" else (above, below)
        ack, _ = d.m.submit(pid, d.open_order(pid, side, sl, tp), d.now)
        assert ack.ok, ack
    assert _open_count(d.m) == players
    samples: list[float] = []
    wall: list[float] = []
    open_counts: list[int] = []
    fired = 0
    for _ in range(ticks):
        cents += round(d.rng.gauss(0, 500))
        open_counts.append(_open_count(d.m))
        us, wus, events = d.step(cents)
        samples.append(us)
        wall.append(wus)
        fired += len(_fired(events))
    return _summary(samples, wall, fired, open_counts)


def bench_ticks_triggering(
    players: int, ticks: int, gc_policy: str, seed: int = 2
) -> dict[str, Any]:
    """About 1 % of positions fire per tick: the price rises 1 USDT a tick and each
    position's nearest level is 40-160 ticks ahead (mean 100), longs by take-profit,
    shorts by stop-loss; a fired player reopens at once."""
    d = Driver(players, ticks, seed, gc_policy)
    cents = P0_CENTS
    _go_live(d, cents)

    def reopen(pid: str) -> None:
        official = d.m.official
        assert official is not None
        base = int(official * 100)
        ahead = _price(base + 100 * d.rng.randrange(40, 161))
        behind = _price(base * 95 // 100)
        side = d.rng.choice(("long", "short"))
        sl, tp = (behind, ahead) if side == "long" else (ahead, behind)
        ack, _ = d.m.submit(pid, d.open_order(pid, side, sl, tp), d.now)
        assert ack.ok, ack

    for pid in d.ids:
        reopen(pid)
    samples: list[float] = []
    wall: list[float] = []
    open_counts: list[int] = []
    fired = 0
    for n in range(TRIGGER_WARMUP_TICKS + ticks):
        cents += 100
        timed = n >= TRIGGER_WARMUP_TICKS
        if timed:
            open_counts.append(_open_count(d.m))
        us, wus, events = d.step(cents)
        hit = _fired(events)
        if timed:
            samples.append(us)
            wall.append(wus)
            fired += len(hit)
        for pid in hit:
            reopen(pid)
    return _summary(samples, wall, fired, open_counts)


Submit = Callable[[str, dict[str, Any], int], tuple[Ack, list[Event]]]


def bench_actions(
    players: int,
    actions: int,
    gc_policy: str,
    seed: int = 3,
    wrap: Callable[[Match, Submit], Submit] | None = None,
) -> dict[str, Any]:
    """Mixed wire actions round-robin over every player, each acting every >= 3.2 s.
    `wrap`: what the timed call goes through instead of `Match.submit` alone (the
    tracing cost bench, bench/tracing_cost.py, puts the handler's action tracing there)."""
    rng = random.Random(seed)
    dt = max(1, -(-3200 // players))  # ms of game time per action
    sim_ms = actions * dt + 60_000
    d = Driver(players, sim_ms // TICK_MS, seed, gc_policy)
    m = d.m
    submit = m.submit if wrap is None else wrap(m, m.submit)
    cents = P0_CENTS
    _go_live(d, cents)
    cycle = ("open", "set_stops", "peek", "partial", "shield", "close")
    phase = {pid: rng.randrange(len(cycle)) for pid in d.ids}

    def levels(side: str, lo: int, hi: int) -> tuple[str, str]:
        official = m.official
        assert official is not None
        base = int(official * 100)
        near = base * rng.randrange(lo, hi) // 10_000
        far = base * rng.randrange(lo, hi) // 10_000
        below, above = str(_price(base - near)), str(_price(base + far))
        return (below, above) if side == "long" else (above, below)

    def make(pid: str) -> dict[str, Any]:
        kind = cycle[phase[pid]]
        phase[pid] = (phase[pid] + 1) % len(cycle)
        coid = d.coid(pid)
        pos = m.players[pid].position
        if kind == "open":
            side = rng.choice(("long", "short"))
            sl, tp = levels(side, 200, 400)
            return {
                "type": "open",
                "client_order_id": coid,
                "side": side,
                "margin": str(rng.randrange(50, 301)),
                "leverage": rng.randrange(2, 11),
                "stop_loss": sl,
                "take_profit": tp,
            }
        if kind == "set_stops":
            side = "long" if pos is None or pos.side > 0 else "short"
            sl, tp = levels(side, 150, 350)
            return {
                "type": "set_stops",
                "client_order_id": coid,
                "stop_loss": sl,
                "take_profit": tp,
            }
        if kind == "partial":
            return {"type": "close", "client_order_id": coid, "fraction": "0.5"}
        if kind == "close":
            return {"type": "close", "client_order_id": coid}
        if kind == "shield":
            return {"type": "ability", "client_order_id": coid, "ability": "shield"}
        return {"type": "peek", "client_order_id": coid}

    codes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    kind_ns: dict[str, float] = Counter()
    elapsed_ns = wall_ns = 0.0
    now = d.now
    next_feed = d.now + TICK_MS
    i = 0
    ids = d.ids
    n_ids = len(ids)
    while i < actions:
        while next_feed <= now:  # untimed: keep the feed fresh and release due ticks
            cents += round(rng.gauss(0, 500))
            m.feed(_price(cents), next_feed)
            next_feed += TICK_MS
        m.advance(now)
        d.housekeeping()
        pid = ids[i % n_ids]
        wire = make(pid)
        c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        ack, _ = submit(pid, wire, now)
        w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        cpu_ns = max(0.0, c1 - c0 - CLOCK_CPU_NS)
        elapsed_ns += cpu_ns
        wall_ns += max(0.0, w1 - w0 - CLOCK_WALL_NS)
        codes[str(ack.code)] += 1
        kind = wire["type"] if wire["type"] != "close" or "fraction" not in wire else "partial"
        kinds[kind] += 1
        kind_ns[kind] += cpu_ns
        i += 1
        now += dt
    assert m.phase is GamePhase.LIVE
    assert m.reconcile() == []
    seconds = elapsed_ns / 1e9
    rejected = sum(n for code, n in codes.items() if code not in ("ok", "delayed"))
    return {
        "actions": actions,
        "seconds": round(seconds, 4),
        "actions_per_s": round(actions / seconds),
        "us_per_action": round(elapsed_ns / 1000 / actions, 2),
        "wall_seconds": round(wall_ns / 1e9, 4),
        "wall_actions_per_s": round(actions * 1e9 / wall_ns),
        "rejected_share": round(rejected / actions, 4),
        "game_ms_per_action": dt,
        "by_code": dict(sorted(codes.items())),
        "by_type": dict(sorted(kinds.items())),
        "us_by_type": {k: round(kind_ns[k] / 1000 / n, 2) for k, n in sorted(kinds.items())},
    }


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def run(players: int, ticks: int, actions: int, gc_policy: str = "server") -> dict[str, Any]:
    global CLOCK_CPU_NS, CLOCK_WALL_NS
    CLOCK_CPU_NS, CLOCK_WALL_NS = _clock_overhead()
    quiet = bench_ticks_quiet(players, ticks, gc_policy)
    triggering = bench_ticks_triggering(players, ticks, gc_policy)
    acts = bench_actions(players, actions, gc_policy)
    targets = [
        {
            "name": f"median official tick, {players} open positions (us)",
            "value": quiet["median_us"],
            "limit": f"< {TARGET_TICK_US:g}",
            "met": quiet["median_us"] < TARGET_TICK_US,
        },
        {
            "name": "actions per second",
            "value": acts["actions_per_s"],
            "limit": f">= {TARGET_ACTIONS_PER_S:g}",
            "met": acts["actions_per_s"] >= TARGET_ACTIONS_PER_S,
        },
    ]
    return {
        "machine": machine(),
        "clock_overhead_ns": {"cpu": CLOCK_CPU_NS, "wall": CLOCK_WALL_NS},
        "config": {
            "players": players,
            "ticks": ticks,
            "actions": actions,
            "mode": MODE,
            "gc": gc_policy,
        },
        "ticks": {"quiet": quiet, "triggering": triggering},
        "actions": acts,
        "targets": targets,
        "ok": all(t["met"] for t in targets),
    }


def table(result: dict[str, Any]) -> str:
    mc, cfg = result["machine"], result["config"]
    q, tr, a = result["ticks"]["quiet"], result["ticks"]["triggering"], result["actions"]
    rows = [
        ("Scenario", "median us", "p99 us", "per second", "notes"),
        (
            f"tick, {cfg['players']} open positions, quiet",
            f"{q['median_us']:.1f}",
            f"{q['p99_us']:.1f}",
            f"{q['ticks_per_s']:,} ticks/s",
            f"{q['fired']} fired in {q['ticks']} ticks",
        ),
        (
            "tick, ~1 % of positions fire",
            f"{tr['median_us']:.1f}",
            f"{tr['p99_us']:.1f}",
            f"{tr['ticks_per_s']:,} ticks/s",
            f"{tr['fired_per_tick']:.2f} fired/tick, ~{tr['open_positions_mean']:.0f} open",
        ),
        (
            "actions (wire dicts, mixed)",
            f"{a['us_per_action']:.1f} mean",
            "",
            f"{a['actions_per_s']:,} actions/s",
            f"{a['rejected_share']:.1%} rejected",
        ),
        (
            "wall clock: quiet tick / actions",
            f"{q['wall_median_us']:.1f}",
            f"{q['wall_p99_us']:.1f}",
            f"{a['wall_actions_per_s']:,} actions/s",
            "(includes time other processes took)",
        ),
    ]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = [f"{mc['cpu']}, {mc['nproc']} CPUs, Python {mc['python']}, gc policy {cfg['gc']}"]
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("rejections: " + ", ".join(f"{k} {v}" for k, v in a["by_code"].items()))
    for t in result["targets"]:
        lines.append(f"{'PASS' if t['met'] else 'MISS'}  {t['name']}: {t['value']} ({t['limit']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--players", type=int, default=1000, help="players, each with a position")
    ap.add_argument("--ticks", type=int, default=5000, help="timed official ticks per scenario")
    ap.add_argument("--actions", type=int, default=50_000, help="timed actions")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead")
    ap.add_argument(
        "--gc",
        choices=("server", "default"),
        default="server",
        help="collector policy: the match server's (freeze after snapshots) or CPython's",
    )
    args = ap.parse_args(argv)
    if args.players < 2 or args.ticks < 1 or args.actions < 1:
        ap.error("need --players >= 2, --ticks >= 1, --actions >= 1")
    result = run(args.players, args.ticks, args.actions, args.gc)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
