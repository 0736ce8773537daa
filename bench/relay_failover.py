"""Feed relay failover: 3 `tradearena feed-relay` replicas, kill the leader, time the takeover.

    .venv/bin/python bench/relay_failover.py [--kills 5] [--signal KILL|TERM]

Starts its own Redis, runs 3 replicas (synthetic source, 20 ticks/s), then
repeatedly kills the leader and measures the time from the signal to the
first tick published by another replica (its receive time, stamped by the
new leader on the same host), and the gap in tick time at the switch. The killed replica
is restarted after each round so there are always 3.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from matchserver.relay.settings import RelaySettings
from tradearena.launcher.localservices import LocalRedis
from tradearena.testing.relays import RelayCluster

ROOT = Path(__file__).resolve().parents[1]

NAMES = ["relay-1", "relay-2", "relay-3"]


def _default(name: str) -> object:
    return RelaySettings.model_fields[f"relay_lease_{name}_ms"].default


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--signal", choices=["KILL", "TERM"], default="KILL")
    args = parser.parse_args()
    sig = signal.Signals[f"SIG{args.signal}"]

    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        server = LocalRedis(Path(tmp) / "redis", appendonly=False)
        server.start()
        cluster = RelayCluster(server.url, Path(tmp) / "logs")
        try:
            for name in NAMES:
                cluster.start(name)
            for name in NAMES:
                cluster.wait_healthy(cluster.replicas[name])
            cluster.wait_for(lambda: len(cluster.entries()) >= 20, what="20 ticks")
            takeovers, gaps = [], []
            for round_ in range(1, args.kills + 1):
                time.sleep(1.0)  # let renewals reach a random phase
                old = cluster.leader()
                assert old is not None, "no leader"
                before = cluster.last_id()
                killed_at = time.time_ns() // 1_000_000  # wall clock, as the relays' recv_ms
                cluster.kill(old, sig)
                new_id, new, recv_ms = cluster.first_tick_from_other_than(old, before, timeout=30)
                took = (recv_ms - killed_at) / 1000
                gap = int(new_id.split("-")[0]) - int(cluster.last_id_before(new_id).split("-")[0])
                takeovers.append(took * 1000)
                gaps.append(gap)
                print(
                    f"round {round_}: {old} -> {new}: takeover {took * 1000:.0f} ms, tick gap {gap} ms"
                )
                cluster.start(old)
                cluster.wait_healthy(cluster.replicas[old])
            entries = cluster.entries()
            keys = [tuple(map(int, i.split("-"))) for i, _ in entries]
            duplicates = len(keys) - len(set(keys))
            ordered = keys == sorted(set(keys))
        finally:
            cluster.stop_all()
            server.stop()

    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"lease TTL {_default('ttl')} ms, renew {_default('renew')} ms, "
        f"acquire retry {_default('acquire')} ms, 20 ticks/s, SIG{args.signal}"
    )
    print(
        f"takeover (signal -> first tick of the new leader) over {args.kills} kills: "
        f"median {statistics.median(takeovers):.0f} ms, max {max(takeovers):.0f} ms"
    )
    print(
        f"tick-time gap at the switch: median {statistics.median(gaps):.0f} ms, max {max(gaps)} ms; "
        f"{len(entries)} ticks, duplicates {duplicates}, IDs strictly increasing: {ordered}"
    )
    return 0 if duplicates == 0 and ordered else 1


if __name__ == "__main__":
    sys.exit(main())
