"""A match server fed by a real feed-relay process through Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tradearena.contracts import keys
from tradearena.launcher.localservices import free_port
from tradearena.testing.matchserver import CLI, MatchServerProcess


@pytest.fixture
def relay(tmp_path: Path, redis_url: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "TRADEARENA_REDIS_URL": redis_url,
        "TRADEARENA_RELAY_SOURCE": "synthetic",
        "TRADEARENA_RELAY_SYNTHETIC_INTERVAL_MS": "100",
        "TRADEARENA_RELAY_PORT": str(free_port()),
    }
    with (tmp_path / "relay.log").open("wb") as out:
        proc = subprocess.Popen([CLI, "feed-relay"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def price_refs(redis_url: str, match_id: str) -> list[str]:
    client = redis.Redis.from_url(redis_url)
    try:
        rows = [json.loads(r) for r in client.lrange(keys.match_log(match_id), 0, -1)]
    finally:
        client.close()
    return [r["data"]["ref"] for r in rows if r["kind"] == "price"]


def test_relay_history_warms_the_match_and_a_restart_feeds_no_tick_twice(
    tmp_path: Path, redis_url: str, relay: subprocess.Popen[bytes]
) -> None:
    server = MatchServerProcess(
        tmp_path,
        redis_url,
        "m-relay",
        ("alice", "bob"),
        env_extra={"TRADEARENA_FEED_SOURCE": "relay"},
    )
    server.start(wait_ready=False)
    try:
        server.wait_ready(timeout=30)  # needs the relay's history to cover the delay window
        first = price_refs(redis_url, "m-relay")
        assert len(first) >= 10
        server.signal(signal.SIGKILL)
        server.wait()
        server.start()
        refs = price_refs(redis_url, "m-relay")
        assert len(refs) >= len(first)
        assert len(refs) == len(set(refs)), "a tick entered the log twice"
        keyed = [tuple(int(x) for x in ref.split("-")) for ref in refs]
        assert keyed == sorted(keyed)
    finally:
        server.stop()
