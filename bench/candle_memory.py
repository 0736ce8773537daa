"""Candle store memory: one symbol's full retention of 1 s and 1 m candles in Redis.

    .venv/bin/python bench/candle_memory.py [--s1-days 2] [--m1-days 30]

Starts its own Redis, fills `keys.candles(symbol, interval)` as the relay would (one
entry per candle, ID `<open time>-0`, BTC-like prices on a 0.01 tick, 4 ticks a
second), and prints `MEMORY USAGE` of each stream and the bytes per candle.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from decimal import Decimal
from pathlib import Path

import redis

from tradearena.contracts import keys
from tradearena.contracts.candles import INTERVAL_MS, Candle, CandleInterval, encode_candle
from tradearena.launcher.localservices import LocalRedis

SYMBOL = "BTCUSDT"


def fill(client: redis.Redis, interval: CandleInterval, count: int) -> int:
    rng = random.Random(1)
    key = keys.candles(SYMBOL, interval)
    step = INTERVAL_MS[interval]
    start = 1_764_000_000_000 - 1_764_000_000_000 % step
    cents = 9_123_456
    pipe = client.pipeline(transaction=False)
    for k in range(count):
        o = cents
        ticks = [o + rng.randint(-300, 300) for _ in range(4 if step == 1000 else 240)]
        cents = ticks[-1]
        prices = [Decimal(p) / 100 for p in (o, max(ticks), min(ticks), cents)]
        candle = Candle(start + k * step, *prices, n=len(ticks))
        pipe.xadd(key, encode_candle(candle), id=candle.stream_id)
        if k % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return int(client.memory_usage(key, samples=0) or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--s1-days", type=float, default=2)
    parser.add_argument("--m1-days", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalRedis(Path(tmp) / "redis", appendonly=False)
        server.start()
        client = redis.Redis.from_url(server.url)
        try:
            for interval, days in (
                (CandleInterval.S1, args.s1_days),
                (CandleInterval.M1, args.m1_days),
            ):
                count = int(days * 86_400_000 // INTERVAL_MS[interval])
                used = fill(client, interval, count)
                print(
                    f"{interval.value}: {days:g} days = {count} candles, "
                    f"{used / 2**20:.1f} MiB, {used / count:.0f} B/candle"
                )
        finally:
            client.close()
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
