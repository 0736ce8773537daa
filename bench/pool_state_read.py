"""What one round of the pool controller's state read costs: every pool server's state
hash (HMGET) and hosted matches (HKEYS) in one pipeline, against a real local Redis.

    .venv/bin/python bench/pool_state_read.py                  # table
    .venv/bin/python bench/pool_state_read.py --servers 100 1000 --rounds 50 --json

Each server has the state hash a pool server writes and hosts `--hosted` matches
(an Assignment each). The timed call is `PoolController.read_states` (the operator's
own code: the pipeline, the parsing, the ledgers); wall clock and this thread's CPU
time are reported per round (median and p99), with the bytes Redis sent back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from redis.asyncio import Redis

from match_operator.kube import KubeApi
from match_operator.metrics import OperatorMetrics
from match_operator.poolcontroller import PoolController
from match_operator.pools import PoolPod
from match_operator.ports import PortAllocator
from match_operator.settings import OperatorSettings
from tradearena.contracts import keys
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.pool import Assignment, ServerState
from tradearena.launcher.localservices import LocalRedis


async def measure(url: str, servers: int, hosted: int, rounds: int) -> dict[str, Any]:
    redis = Redis.from_url(url)
    await redis.flushall()
    ctl = PoolController(
        OperatorSettings(),
        cast(KubeApi, None),  # read_states talks to Redis only
        redis,
        PortAllocator(7000, 8000),
        OperatorMetrics(),
    )
    pipe = redis.pipeline(transaction=False)
    for i in range(servers):
        name = f"default-{i:05d}"
        ctl.pods[("games", name)] = PoolPod(name=name, namespace="games", pool="default")
        pipe.hset(
            keys.server_state(name),
            mapping={
                ServerState.CAPACITY: max(hosted, 1),
                ServerState.PLAYERS: 2 * hosted,
                ServerState.READY: 1,
                ServerState.DRAINING: 0,
                ServerState.HEARTBEAT_MS: int(time.time() * 1000),
                ServerState.STARTED_MS: int(time.time() * 1000),
            },
        )
        for m in range(hosted):
            spec = MatchSpec(f"{name}-m{m}", "duel", "blitz", 0, ("alice", "bob"))
            pipe.hset(keys.server_matches(name), spec.match_id, Assignment.of(spec, 1).to_json())
    await pipe.execute()
    names = list(ctl.pods)
    await ctl.read_states(names)  # warm the connection
    before = (await redis.info("stats"))["total_net_output_bytes"]
    wall, cpu = [], []
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.thread_time()
        await ctl.read_states(names)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.thread_time() - c0)
    after = (await redis.info("stats"))["total_net_output_bytes"]
    assert all(ctl.ledgers[k].count == hosted for k in names)
    await redis.aclose()

    def p99(xs: list[float]) -> float:
        return sorted(xs)[max(0, int(len(xs) * 0.99) - 1)]

    return {
        "servers": servers,
        "hosted": hosted,
        "wall_ms_median": round(statistics.median(wall) * 1000, 3),
        "wall_ms_p99": round(p99(wall) * 1000, 3),
        "cpu_ms_median": round(statistics.median(cpu) * 1000, 3),
        "bytes_per_round": (after - before) // rounds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, nargs="+", default=[10, 100, 500, 1000])
    parser.add_argument("--hosted", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalRedis(Path(tmp))
        server.start()
        try:
            results = [
                asyncio.run(measure(server.url, n, args.hosted, args.rounds)) for n in args.servers
            ]
        finally:
            server.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'servers':>8} {'hosted':>6} {'wall ms p50':>11} {'p99':>8} {'cpu ms':>8} {'bytes':>9}")
    for r in results:
        print(
            f"{r['servers']:>8} {r['hosted']:>6} {r['wall_ms_median']:>11} "
            f"{r['wall_ms_p99']:>8} {r['cpu_ms_median']:>8} {r['bytes_per_round']:>9}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
