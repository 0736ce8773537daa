"""Slow consumers: flow control on `/match`, with stock socket.io-client players.

A client that stops reading gets only the newest tick and leaderboard once it is
more than the window behind; acks, fills and events still arrive, in order; one
that stays stuck is disconnected; a client that keeps up misses nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tradearena.testing.matchserver import MatchServerProcess
from tradearena.testing.paths import REPO

JS = REPO / "tests" / "js"
WINDOW = 8
STUCK_MS = 5000  # longer than the lag scenario's pause (3 s)


def run_flow(server: MatchServerProcess, scenario: str, **extra: Any) -> dict[str, Any]:
    assert (JS / "node_modules" / "socket.io-client").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    cfg = {
        "url": server.url,
        "alice": server.token("alice"),
        "bob": server.token("bob"),
        "scenario": scenario,
        **extra,
    }
    done = subprocess.run(
        ["node", str(JS / "flow_client.mjs"), json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr, server.logs()[-3000:])
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def metric(server: MatchServerProcess, name: str, **labels: str) -> float:
    """The sum of a metric's samples over the label values not given."""
    with urllib.request.urlopen(f"{server.admin_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{([^}}]*)\}})? (\S+)$", line)
        if m and wanted <= set((m.group(2) or "").split(",")):
            total += float(m.group(3))
    return total


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[MatchServerProcess]:
    proc = MatchServerProcess(
        tmp_path,
        redis_url,
        "m-flow",
        ("alice", "bob"),
        env_extra={
            "TRADEARENA_DURATION_MS": "600000",
            "TRADEARENA_SYNTHETIC_INTERVAL_MS": "50",  # 20 ticks/s
            "TRADEARENA_LEADERBOARD_INTERVAL_MS": "250",
            "TRADEARENA_TICK_ACK_WINDOW": str(WINDOW),
            "TRADEARENA_STUCK_CLIENT_MS": str(STUCK_MS),
        },
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_a_client_that_stops_reading_gets_the_newest_tick_and_every_other_message_in_order(
    server: MatchServerProcess,
) -> None:
    r = run_flow(server, "lag", pause_ms=3000)
    log: list[dict[str, Any]] = r["alice"]
    after = [x for x in log if x["t"] >= r["resumed_at"]]
    # The backlog is bounded: of the 60 ticks produced while alice did not read, she
    # gets the window sent before the server noticed, and only the newest after that
    # (once more before each message that must not wait: a fill, an event).
    stale = [x for x in after if x["event"] == "tick" and x["data"]["at"] < r["resumed_at"] - 500]
    assert len(stale) <= WINDOW + 6, [x["data"] for x in stale]
    assert metric(server, "tradearena_match_conflated_total") > 0
    # She still catches up with the newest tick.
    ticks = [x["data"] for x in log if x["event"] == "tick"]
    assert ticks[-1]["at"] >= r["newest_at_resume"]["at"]
    seqs = [t["seq"] for t in ticks]
    assert seqs == sorted(set(seqs))  # a subsequence, never reordered
    # Nothing else is dropped, and everything keeps the server's order.
    kinds = [x["event"] for x in after]
    fills = [x for x in after if x["event"] == "fill"]
    assert [f["data"]["ref"] for f in fills] == ["lag-1"]
    answers = {x["data"]["client_order_id"]: x for x in after if x["event"] == "__ack"}
    assert answers["lag-1"]["data"]["ok"] is True
    assert answers["lag-2"]["data"]["code"] == "peek_not_ready"
    assert kinds.index("fill") < after.index(answers["lag-1"])  # the fill is sent first
    assert after.index(answers["lag-1"]) < after.index(answers["lag-2"])
    bob = [
        x["data"]["status"]
        for x in after
        if x["event"] == "player" and x["data"]["player"] == "bob"
    ]
    assert bob == ["disconnected", "connected"]
    # The newest tick before the fill is the price it filled at: no stale tick is
    # delivered after a newer message.
    before_fill = [x for x in log[: log.index(fills[0])] if x["event"] == "tick"]
    assert before_fill[-1]["data"]["price"] == fills[0]["data"]["price"]


def test_a_stuck_client_is_disconnected_after_the_limit_and_counted(
    server: MatchServerProcess,
) -> None:
    r = run_flow(server, "stuck")
    assert STUCK_MS <= r["gone_after_ms"] < STUCK_MS + 5000
    assert metric(server, "tradearena_match_stuck_disconnects_total") == 1


@pytest.mark.parametrize("ack", [True, False], ids=["acking", "never-acking"])
def test_a_client_that_keeps_up_receives_every_tick(server: MatchServerProcess, ack: bool) -> None:
    r = run_flow(server, "steady", measure_ms=3000, ack=ack)
    seqs = [x["data"]["seq"] for x in r["alice"] if x["event"] == "tick"]
    assert len(seqs) >= 40  # 20 ticks/s for 3 s
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # not one missing
    assert any(x["event"] == "leaderboard" for x in r["alice"])
    assert (r["acks_sent"] > 0) is ack
    assert metric(server, "tradearena_match_conflated_total") == 0
    assert metric(server, "tradearena_match_stuck_disconnects_total") == 0


def test_tick_acks_from_the_stock_client_take_the_fast_path_and_bad_ones_are_refused(
    server: MatchServerProcess,
) -> None:
    """`tick_ack {seq}` as socket.io-client sends it is handled before Socket.IO's dispatch
    (tradearena.sockets.GuardedServer.fast_event) and counted by the frame writer; one
    with a callback or a malformed one goes the usual way and gets its answer."""
    r = run_flow(server, "acks", measure_ms=2000)
    answers = r["answers"]
    assert answers.pop("good") == {"ok": True, "code": "ok", "message": "acknowledged"}
    for name, answer in answers.items():
        assert answer["code"] == "invalid_ack", name
        assert answer["ok"] is False, name
    assert r["synced"] == [True, True]
    assert r["acks_sent"] >= 2 * 10  # ten fresh ticks each, 2 s at 20 ticks/s: more
    assert metric(server, "tradearena_match_tick_acks_total", path="fast") == r["acks_sent"]
    # the usual way: the one with a callback, and {seq, extra} (not the exact form, valid)
    assert metric(server, "tradearena_match_tick_acks_total", path="dispatch") == 2
    # every well-formed ack reached the writer; the malformed ones none
    assert metric(server, "tradearena_match_tick_ack_lag_ticks_count") == r["acks_sent"] + 2
