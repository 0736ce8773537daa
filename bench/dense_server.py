"""Dense hosting: what one more match costs in a pool server, against a process per match.

    .venv/bin/python bench/dense_server.py          # starts its own Redis

1. Memory: one pool server process (synthetic feed at 4 ticks/s, like the relay);
   its RSS with nothing hosted, then with `--duels` duels assigned through
   `allocation.allocate`, both players of each connected over Socket.IO and the
   matches live for `--settle` seconds: RSS per extra hosted duel. For comparison,
   the RSS of a dedicated server process running one live duel.
2. CPU: `--tens` ten-player matches hosted at once, every player acting every
   `--act-every` seconds; the server process's CPU time (user + system, from
   /proc) over `--seconds`, per hosted match, in % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from tradearena.launcher.localservices import LocalRedis
from tradearena.testing.match_client import MatchClient
from tradearena.testing.matchserver import MatchServerProcess, PoolServerProcess, pool_server
from tradearena.testing.pool import assign, wait_accepting, wait_ready

TICKS = {"TRADEARENA_SYNTHETIC_INTERVAL_MS": "250", "TRADEARENA_LOG_LEVEL": "WARNING"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


async def host_and_connect(
    redis: Redis, pool: PoolServerProcess, prefix: str, n: int, mode: str, players: int
) -> list[list[MatchClient]]:
    matches = []
    for i in range(n):
        mid = f"{prefix}-{i}"
        names = tuple(f"p{j}" for j in range(players))
        await assign(redis, pool.server_id, mid, names, mode=mode, now_ms=now_ms())
        await wait_ready(redis, mid)
        clients = [MatchClient(pool.seat(mid), p) for p in names]
        for c in clients:
            await c.connect()
        matches.append(clients)
    for clients in matches:
        await clients[0].wait_for("phase", lambda d: d["phase"] == "live", within=60)
    return matches


async def close_all(matches: list[list[MatchClient]]) -> None:
    for clients in matches:
        for c in clients:
            await c.close()


async def memory(args: argparse.Namespace, redis: Redis, work: Path, url: str) -> dict[str, Any]:
    pool = pool_server(work / "pool", url, "bench-mem", args.duels + 1, TICKS)
    (work / "pool").mkdir()
    pool.start()
    try:
        await wait_accepting(redis, pool.server_id)
        await asyncio.sleep(args.settle)
        idle = rss_mb(pool.proc.pid)  # type: ignore[union-attr]
        one = await host_and_connect(redis, pool, "warm", 1, "duel", 2)  # first-use costs
        await asyncio.sleep(args.settle)
        base = rss_mb(pool.proc.pid)  # type: ignore[union-attr]
        duels = await host_and_connect(redis, pool, "duel", args.duels, "duel", 2)
        await asyncio.sleep(args.settle)
        loaded = rss_mb(pool.proc.pid)  # type: ignore[union-attr]
        await close_all(one + duels)
    finally:
        pool.stop()
    dedicated = MatchServerProcess(work / "one", url, "solo-1", ("alice", "bob"), env_extra=TICKS)
    (work / "one").mkdir()
    dedicated.start()
    try:
        clients = [MatchClient(dedicated, p) for p in ("alice", "bob")]
        for c in clients:
            await c.connect()
        await clients[0].wait_for("phase", lambda d: d["phase"] == "live")
        await asyncio.sleep(args.settle)
        solo = rss_mb(dedicated.proc.pid)  # type: ignore[union-attr]
        await close_all([clients])
    finally:
        dedicated.stop()
    return {
        "pool_idle_mb": round(idle, 1),
        "pool_one_duel_mb": round(base, 1),
        "pool_duels": args.duels,
        "pool_loaded_mb": round(loaded, 1),
        "mb_per_extra_duel": round((loaded - base) / args.duels, 2),
        "dedicated_one_duel_mb": round(solo, 1),
    }


async def cpu(args: argparse.Namespace, redis: Redis, work: Path, url: str) -> dict[str, Any]:
    pool = pool_server(work / "cpu", url, "bench-cpu", args.tens, TICKS)
    (work / "cpu").mkdir()
    pool.start()
    rng = random.Random(1)
    try:
        await wait_accepting(redis, pool.server_id)
        matches = await host_and_connect(redis, pool, "ten", args.tens, "standard", 10)
        stop = asyncio.Event()
        acted = 0

        async def trader(client: MatchClient, k: int) -> None:
            nonlocal acted
            await asyncio.sleep(rng.random() * args.act_every)
            n = 0
            while not stop.is_set():
                n += 1
                await client.act(type="set_stops", client_order_id=f"{k}-{n}")
                acted += 1
                await asyncio.sleep(args.act_every)

        traders = [
            asyncio.create_task(trader(c, k))
            for k, c in enumerate(c for clients in matches for c in clients)
        ]
        await asyncio.sleep(args.settle)
        pid = pool.proc.pid  # type: ignore[union-attr]
        c0, t0, a0 = cpu_s(pid), time.monotonic(), acted
        await asyncio.sleep(args.seconds)
        c1, t1, a1 = cpu_s(pid), time.monotonic(), acted
        stop.set()
        await asyncio.gather(*traders, return_exceptions=True)
        rss = rss_mb(pid)
        await close_all(matches)
    finally:
        pool.stop()
    share = (c1 - c0) / (t1 - t0) * 100
    return {
        "ten_player_matches": args.tens,
        "actions_per_s": round((a1 - a0) / (t1 - t0), 1),
        "server_cpu_pct": round(share, 1),
        "cpu_pct_per_match": round(share / args.tens, 2),
        "server_rss_mb": round(rss, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dense-") as tmp:
        work = Path(tmp)
        server = LocalRedis(work / "redis")
        server.start()
        redis = Redis.from_url(server.url)
        try:
            out = {"memory": await memory(args, redis, work, server.url)}
            out["cpu"] = await cpu(args, redis, work, server.url)
        finally:
            await redis.aclose()
            server.stop()
    out["machine"] = f"{os.cpu_count()} cpu, {platform.processor() or platform.machine()}"
    out["load_average"] = os.getloadavg()[0]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duels", type=int, default=50)
    parser.add_argument("--tens", type=int, default=10)
    parser.add_argument("--act-every", type=float, default=2.0, help="seconds between actions")
    parser.add_argument("--seconds", type=float, default=20.0, help="CPU measuring window")
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
