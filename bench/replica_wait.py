"""What waiting for a replica costs a match: actions/s and action-ack latency with and
without `TRADEARENA_REDIS_WAIT_REPLICAS=1`, in one run, against a real Redis primary
with a replica on this machine (started by the bench; `--cluster` adds a real
three-shard Redis Cluster with a replica per primary).

    .venv/bin/python bench/replica_wait.py                  # table
    .venv/bin/python bench/replica_wait.py --json --rounds 3 --actions 5000 --cluster

What is timed: `MatchRunner.submit`, the match server's own path for an action (under
the match's lock: the engine call, the durable append of its log entries through
`MatchStore.append` (the append-if-length script; with waiting, in one pipeline with
WAIT on the same connection), then its events to a null emitter): the wall time from
the call to the acknowledgement, as the player's ack waits for it minus the network.
An arena match of `--players` players (engine_bench's driver), mixed actions (open with
stops, set_stops, close) round-robin, each player every 3.2 s of game time; between
actions, untimed, the feed's prices go in through `MatchRunner.on_price` (committed
like the server's, waiting too). Modes alternate over `--rounds` rounds, each on a
fresh match; medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from engine_bench import (  # noqa: E402
    P0_CENTS,
    TICK_MS,
    Driver,
    _go_live,
    _price,
    machine,
)
from matchserver.durability import ReplicaWaiter, WaitPolicy  # noqa: E402
from matchserver.metrics import MatchMetrics  # noqa: E402
from matchserver.runner import MatchRunner, RunnerConfig  # noqa: E402
from matchserver.store import MatchStore  # noqa: E402
from tradearena import redisconn  # noqa: E402
from tradearena.contracts import keys  # noqa: E402


class NullEmitter:
    async def broadcast(self, kind: str, data: dict[str, Any]) -> None:
        return None

    async def to_player(self, player: str, kind: str, data: dict[str, Any]) -> None:
        return None


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_run(url: str, replicas: int, players: int, actions: int, tag: str) -> dict[str, Any]:
    client = redisconn.connect(url)
    metrics = MatchMetrics()
    waits: list[float] = []
    waiter = ReplicaWaiter(client, WaitPolicy(replicas, 10_000), observe=waits.append)
    d = Driver(players, actions * 40, seed=7, gc_policy="none")
    cents = P0_CENTS
    _go_live(d, cents)
    m = d.m
    store = MatchStore(client, f"bench-{tag}", waiter)
    await store.claim_header(m.header())
    await store.append(m.log, 0)
    now = [d.now]
    config = RunnerConfig("blitz", "BTCUSDT", 0, 50, 1000, 20)
    runner = MatchRunner(m, store, NullEmitter(), metrics, config, clock=lambda: now[0])
    dt = max(1, -(-3200 // players))
    next_feed = now[0] + TICK_MS
    cycle = ("open", "set_stops", "close")
    turn = dict.fromkeys(d.ids, 0)
    latencies: list[float] = []
    codes: dict[str, int] = {}
    try:
        for i in range(actions):
            while next_feed <= now[0]:  # untimed: the feed, committed like the server's
                cents += round(d.rng.gauss(0, 500))
                m.advance(next_feed)
                await runner.on_price(_price(cents), next_feed)
                next_feed += TICK_MS
            pid = d.ids[i % len(d.ids)]
            kind = cycle[turn[pid] % 3]
            turn[pid] += 1
            official = m.official or Decimal(P0_CENTS) / 100
            below, above = str(official * Decimal("0.95")), str(official * Decimal("1.05"))
            if kind == "open":
                wire = d.open_order(pid, "long", Decimal(below), Decimal(above))
            elif kind == "set_stops":
                wire = {
                    "type": "set_stops",
                    "client_order_id": d.coid(pid),
                    "stop_loss": below,
                    "take_profit": above,
                }
            else:
                wire = {"type": "close", "client_order_id": d.coid(pid)}
            started = time.perf_counter()
            ack = await runner.submit(pid, wire)
            latencies.append(time.perf_counter() - started)
            codes[str(ack.code)] = codes.get(str(ack.code), 0) + 1
            now[0] += dt
        assert runner.fault is None
        assert await client.llen(keys.match_log(f"bench-{tag}")) == len(m.log)  # every entry, once
    finally:
        await waiter.aclose()
        await client.aclose()
    total = sum(latencies)
    return {
        "replicas": replicas,
        "actions": actions,
        "actions_per_s": round(actions / total),
        "ack_p50_ms": round(_pct(latencies, 0.50) * 1000, 3),
        "ack_p99_ms": round(_pct(latencies, 0.99) * 1000, 3),
        "ack_max_ms": round(max(latencies) * 1000, 3),
        "waited_writes": len(waits),
        "by_code": dict(sorted(codes.items())),
    }


def bench(url: str, label: str, rounds: int, players: int, actions: int) -> list[dict[str, Any]]:
    runs: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    for r in range(rounds):
        for replicas in (0, 1):
            tag = f"{label}-{replicas}-{r}"
            runs[replicas].append(asyncio.run(one_run(url, replicas, players, actions, tag)))
    out = []
    for replicas, rs in runs.items():
        out.append(
            {
                "redis": label,
                "wait_replicas": replicas,
                "actions_per_s": statistics.median(x["actions_per_s"] for x in rs),
                "ack_p50_ms": statistics.median(x["ack_p50_ms"] for x in rs),
                "ack_p99_ms": statistics.median(x["ack_p99_ms"] for x in rs),
                "ack_max_ms": max(x["ack_max_ms"] for x in rs),
                "runs": rs,
            }
        )
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| Redis | waits for | actions/s (median) | ack p50 ms | ack p99 ms | max ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        per_run = " / ".join(str(x["actions_per_s"]) for x in row["runs"])
        lines.append(
            f"| {row['redis']} | {row['wait_replicas']} replica(s) "
            f"| {row['actions_per_s']:,.0f} ({per_run}) | {row['ack_p50_ms']} "
            f"| {row['ack_p99_ms']} | {row['ack_max_ms']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=1000)
    parser.add_argument("--actions", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cluster", action="store_true", help="also on a Redis Cluster")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from tradearena.testing.redis_cluster import LocalRedisCluster
    from tradearena.testing.redis_replica import ReplicatedRedis

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="replica-wait-") as tmp:
        pair = ReplicatedRedis(Path(tmp) / "pair")
        pair.start()
        try:
            rows += bench(pair.url, "primary + replica", args.rounds, args.players, args.actions)
        finally:
            pair.stop()
        if args.cluster:
            cluster = LocalRedisCluster(Path(tmp) / "cluster")
            cluster.start()
            try:
                rows += bench(cluster.url, "cluster", args.rounds, args.players, args.actions)
            finally:
                cluster.stop()
    if args.json:
        print(json.dumps({"machine": machine(), "args": vars(args), "results": rows}, indent=2))
    else:
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
