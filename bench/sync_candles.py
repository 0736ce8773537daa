"""What the official candles on `sync` cost a match: memory, the tick path, a sync.

    .venv/bin/python bench/sync_candles.py          # table
    .venv/bin/python bench/sync_candles.py --json

1. Memory: the candles of a match that has run for 15 minutes and more (900 of them,
   full), every candle's open/high/low/close distinct (the worst case), measured with
   tracemalloc around building them.
2. Tick path: `OfficialCandles.add`, the only work an official price gains, timed
   over a price stream of 10 prices a second (one in ten opens a candle, closing
   the one before), CPU time of this thread per call.
3. A `sync`: `Match.sync_state` for a match with full candles, against
   `Match.player_state` (what sync answered before), the size of its JSON and the
   time to encode it (Socket.IO does that once per answer).
4. A restore: rebuilding the candles from the log of a 30-minute match with a price
   every 250 ms (what `snapshot.restore` adds).
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from decimal import Decimal
from typing import Any

from matchserver.engine.candles import KEEP, OfficialCandles, official_prices
from matchserver.engine.match import Match
from tradearena.modes import default_catalogue

PRICES_PER_S = 10


def prices(n: int) -> list[tuple[int, Decimal]]:
    step = 1000 // PRICES_PER_S
    return [(k * step, Decimal(100_000) + Decimal(k) / 100) for k in range(n)]


def memory() -> dict[str, Any]:
    """Prices made inside the window, as the engine parses each from its log entry: what
    stays is what the candles keep (their strings, and the forming one's Decimals)."""
    n = (KEEP + 100) * PRICES_PER_S
    step = 1000 // PRICES_PER_S
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    candles = OfficialCandles()
    for k in range(n):  # every candle's four prices distinct: the worst case
        wobble = (k % PRICES_PER_S) * (1 if k % 3 else -1)
        candles.add(k * step, Decimal(f"{100_000 + k // PRICES_PER_S}.{50 + wobble:02d}"))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert len(candles) == KEEP
    return {"candles": len(candles), "bytes": grown, "bytes_per_candle": grown // len(candles)}


def tick_path(n: int = 200_000) -> dict[str, Any]:
    stream = prices(n)
    candles = OfficialCandles()
    samples: list[int] = []
    clock = time.thread_time_ns
    for at, price in stream:
        t0 = clock()
        candles.add(at, price)
        samples.append(clock() - t0)
    empty: list[int] = []
    for _ in range(n):
        t0 = clock()
        empty.append(clock() - t0)
    overhead = sorted(empty)[n // 2]
    samples.sort()
    return {
        "calls": n,
        "median_ns": max(0, samples[n // 2] - overhead),
        "p99_ns": max(0, samples[n * 99 // 100] - overhead),
        "mean_ns": max(0, sum(samples) // n - overhead),
    }


def sync_cost(rounds: int = 200) -> dict[str, Any]:
    rules = default_catalogue().mode("standard").rules.with_overrides(price_delay_ms=0)
    m = Match("m-1", "standard", rules, ["alice"], 3_600_000, 0)
    for at, price in prices((KEEP + 100) * PRICES_PER_S):
        m.feed(price, at)
    clock = time.thread_time_ns

    def timed(call: Any) -> int:
        t0 = clock()
        for _ in range(rounds):
            call("alice")
        return (clock() - t0) // rounds

    state = m.sync_state("alice")
    t0 = clock()
    for _ in range(rounds):
        json.dumps(state, separators=(",", ":"))
    json_ns = (clock() - t0) // rounds
    return {
        "candles": len(state["candles"]["items"]),
        "sync_state_us": timed(m.sync_state) // 1000,
        "player_state_us": timed(m.player_state) // 1000,
        "json_us": json_ns // 1000,
        "json_bytes": len(json.dumps(state, separators=(",", ":"))),
        "json_bytes_before": len(json.dumps(m.player_state("alice"), separators=(",", ":"))),
    }


def restore_cost(rounds: int = 20) -> dict[str, Any]:
    """Rebuilding the candles on restore: a 30-minute match, a price every 250 ms."""
    rules = default_catalogue().mode("standard").rules
    m = Match("m-1", "standard", rules, ["alice"], 3_600_000, 0)
    n = 30 * 60 * 4
    for k in range(n):
        m.feed(Decimal(100_000) + Decimal(k % 997) / 100, k * 250)
    assert m.official_at is not None
    clock = time.thread_time_ns
    t0 = clock()
    for _ in range(rounds):
        candles = OfficialCandles()
        since = candles.window_start(m.official_at)
        for at, price in official_prices(m.log, rules.price_delay_ms, len(m.delay_line), since):
            candles.add(at, price)
    assert len(candles) == KEEP
    return {"log_prices": n, "rebuild_ms": round((clock() - t0) / rounds / 1e6, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = {
        "memory": memory(),
        "tick_path": tick_path(),
        "sync": sync_cost(),
        "restore": restore_cost(),
    }
    if args.json:
        print(json.dumps(out))
        return
    mem, tick, sync, rest = out["memory"], out["tick_path"], out["sync"], out["restore"]
    print(
        f"memory: {mem['candles']} candles, {mem['bytes']:,} B ({mem['bytes_per_candle']} B each)"
    )
    print(
        f"tick path (add): median {tick['median_ns']} ns, p99 {tick['p99_ns']} ns, "
        f"mean {tick['mean_ns']} ns"
    )
    print(
        f"sync: {sync['sync_state_us']} us (was {sync['player_state_us']} us), "
        f"{sync['json_bytes']:,} B JSON (was {sync['json_bytes_before']:,} B), "
        f"encoded in {sync['json_us']} us"
    )
    print(
        f"restore: candles rebuilt from {rest['log_prices']:,} logged prices in {rest['rebuild_ms']} ms"
    )


if __name__ == "__main__":
    main()
