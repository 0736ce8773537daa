"""Matchmaking benchmark: one matcher process against a real Redis.

    .venv/bin/python bench/matchmaking.py            # starts its own Redis
    .venv/bin/python bench/matchmaking.py --redis-url redis://127.0.0.1:6379/0

1. Throughput: 10,000 tickets waiting; one matcher runs planning rounds (read,
   plan, pipelined atomic claims) until nothing more can be matched; tickets
   matched per second of matcher wall time.
2. Latency: players join at a steady rate while the matcher loops; queue-to-
   match-formed latency per matched ticket (join call to claim committed), p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import redis.asyncio as aioredis

from lobby.matchmaking.queues import Queues
from lobby.settings import QueueSettings
from tradearena.launcher.localservices import LocalRedis
from tradearena.modes import default_catalogue


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fill(queues: Queues, n: int, mode: str, rng: random.Random, now: int) -> None:
    for start in range(0, n, 200):
        await asyncio.gather(
            *[
                queues.join(f"p{start + i}", mode, "quick", rng.gauss(25, 6), now=now)
                for i in range(min(200, n - start))
            ]
        )


async def throughput(client: aioredis.Redis, mode: str, n: int) -> dict[str, float]:
    await client.flushdb()
    queues = Queues(client, default_catalogue(), QueueSettings(ticket_ttl_s=3600))
    rng = random.Random(1)
    now = int(time.time() * 1000)
    await fill(queues, n, mode, rng, now)
    matched = rounds = 0
    t0 = time.perf_counter()
    while True:
        claims = await queues.match_round(Decimal(1), now=now, modes=[mode])
        rounds += 1
        if not claims:
            break
        matched += sum(len(c.players) for c in claims)
    elapsed = time.perf_counter() - t0
    return {"matched": matched, "seconds": elapsed, "per_s": matched / elapsed, "rounds": rounds}


async def latency(client: aioredis.Redis, mode: str, rate: int, seconds: float) -> dict[str, float]:
    await client.flushdb()
    queues = Queues(client, default_catalogue(), QueueSettings(ticket_ttl_s=3600))
    rng = random.Random(2)
    joined_at: dict[str, float] = {}
    waits: list[float] = []
    done = asyncio.Event()

    async def producer() -> None:
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            due = int((time.perf_counter() - start) * rate)
            batch = []
            while n < due:
                player = f"l{n}"
                joined_at[player] = time.perf_counter()
                batch.append(queues.join(player, mode, "quick", rng.gauss(25, 3)))
                n += 1
            if batch:
                await asyncio.gather(*batch)
            await asyncio.sleep(0.005)
        done.set()

    async def matcher() -> None:
        while not done.is_set():
            claims = await queues.match_round(Decimal(1), modes=[mode])
            t = time.perf_counter()
            waits.extend(t - joined_at[p] for c in claims for p in c.players)
            if not claims:
                await asyncio.sleep(0.002)

    await asyncio.gather(producer(), matcher())
    return {
        "joined": len(joined_at),
        "matched": len(waits),
        "p50_ms": 1000 * pct(waits, 0.50),
        "p99_ms": 1000 * pct(waits, 0.99),
        "mean_ms": 1000 * statistics.fmean(waits),
    }


async def run(url: str, n: int) -> None:
    client = aioredis.Redis.from_url(url, max_connections=400)
    try:
        for mode in ("standard", "duel"):
            r = await throughput(client, mode, n)
            print(
                f"throughput {mode:<8} {n} waiting: matched {r['matched']:.0f} in "
                f"{r['seconds']:.3f} s ({r['rounds']:.0f} rounds) = {r['per_s']:,.0f} tickets/s"
            )
        for mode in ("standard", "duel"):
            r = await latency(client, mode, rate=1000, seconds=10)
            print(
                f"latency    {mode:<8} 1000 joins/s for 10 s: matched {r['matched']:.0f}/"
                f"{r['joined']:.0f}, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                f"mean {r['mean_ms']:.1f} ms"
            )
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", default=None, help="default: start a local Redis")
    parser.add_argument("--tickets", type=int, default=10_000)
    args = parser.parse_args()
    if args.redis_url:
        asyncio.run(run(args.redis_url, args.tickets))
        return
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        server = LocalRedis(Path(tmp), appendonly=False)
        server.start()
        try:
            asyncio.run(run(server.url, args.tickets))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
