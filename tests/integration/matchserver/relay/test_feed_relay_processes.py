"""Three `tradearena feed-relay` processes on one Redis: one publishes, SIGKILL hands over.

Synthetic source at 20 ticks/s. What is checked is what match servers rely
on: stream IDs strictly increasing, no tick twice, one publisher at a time, a
bounded gap at failover, and a clean exit (lease released) on SIGTERM. Times
are only checked against generous sanity bounds; `bench/relay_failover.py`
measures them.
"""

from __future__ import annotations

import itertools
import json
import signal
import time
from pathlib import Path

from tradearena.testing.relays import RelayCluster, relay_cluster

NAMES = ["relay-1", "relay-2", "relay-3"]
TTL_MS = 1500  # the default lease TTL


def stream_key(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def assert_clean_stream(cluster: RelayCluster) -> list[tuple[str, dict[str, str]]]:
    entries = cluster.entries()
    ids = [stream_key(i) for i, _ in entries]
    assert ids == sorted(set(ids)), "stream IDs must strictly increase"
    seqs = [int(f["seq"]) for _, f in entries]
    assert len(seqs) == len(set(seqs)), "a tick was published twice"
    assert all(stream_key(i) == (int(f["event_ms"]), int(f["seq"])) for i, f in entries)
    return entries


def runs(entries: list[tuple[str, dict[str, str]]]) -> list[str]:
    """Publishers in order, one item per uninterrupted run."""
    return [relay for relay, _ in itertools.groupby(f["relay"] for _, f in entries)]


def test_one_replica_publishes_and_sigkill_fails_over_without_duplicates(
    tmp_path: Path, redis_url: str
) -> None:
    with relay_cluster(redis_url, tmp_path / "logs", NAMES) as cluster:
        cluster.wait_for(lambda: len(cluster.entries()) >= 20, what="20 ticks")
        first = cluster.leader()
        assert first in NAMES
        assert runs(cluster.entries()) == [first]
        statuses = {n: json.loads(cluster.replicas[n].get("/readyz")[1]) for n in NAMES}
        assert [n for n, s in statuses.items() if s["symbols"]["BTCUSDT"]["leader"]] == [first]
        assert all(cluster.replicas[n].get("/healthz")[0] == 200 for n in NAMES)
        assert cluster.replicas[first].metric("tradearena_feed_leader") == 1
        assert cluster.replicas[first].metric("tradearena_feed_ticks_published_total") > 0
        for follower in set(NAMES) - {first}:
            assert cluster.replicas[follower].metric("tradearena_feed_leader") == 0
            assert cluster.replicas[follower].metric("tradearena_feed_ticks_published_total") == 0
            _, text = cluster.replicas[follower].get("/metrics")
            assert 'tradearena_feed_leader{symbol="BTCUSDT"} 0.0' in text  # exported at 0

        failovers = []
        old = first
        for _ in range(2):
            before = cluster.last_id()
            killed_at = time.monotonic()
            assert cluster.kill(old) == -signal.SIGKILL
            _, new, _ = cluster.first_tick_from_other_than(old, before, timeout=30)
            failovers.append(time.monotonic() - killed_at)
            assert new != old and cluster.leader() == new
            cluster.wait_for(
                lambda n=new: sum(f["relay"] == n for _, f in cluster.entries()) >= 10,
                what="10 ticks from the new leader",
            )
            old = new

        entries = assert_clean_stream(cluster)
        publishers = runs(entries)
        assert publishers[0] == first and len(set(publishers)) == len(publishers) == 3
        switches = [
            i
            for i in range(1, len(entries))
            if entries[i][1]["relay"] != entries[i - 1][1]["relay"]
        ]
        for i in switches:
            gap_ms = stream_key(entries[i][0])[0] - stream_key(entries[i - 1][0])[0]
            assert 0 < gap_ms < TTL_MS + 5000  # bounded by the lease TTL (+ generous slack)
        assert max(failovers) < 15  # sanity only; the benchmark measures it

        survivor = cluster.replicas[old]
        assert cluster.kill(old, signal.SIGTERM) == 0
        assert cluster.leader() is None  # released on the way out, not left to expire
        assert '"lease released"' in survivor.log_path.read_text()
