"""The stock JavaScript socket.io-client (from npm) plays against the match server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tradearena.testing.matchserver import MatchServerProcess
from tradearena.testing.paths import REPO

JS = REPO / "tests" / "js"


def run_js(
    url: str, token: str, actions: list[dict[str, Any]], wait_for: str
) -> tuple[int, list[dict[str, Any]]]:
    assert (JS / "node_modules" / "socket.io-client").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    done = subprocess.run(
        ["node", str(JS / "match_client.mjs"), url, token, json.dumps(actions), wait_for],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, lines


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[MatchServerProcess]:
    proc = MatchServerProcess(
        tmp_path, redis_url, "m-js", ("alice",), env_extra={"TRADEARENA_DURATION_MS": "600000"}
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_js_client_connects_syncs_trades_and_gets_its_fill(server: MatchServerProcess) -> None:
    actions = [
        {"type": "open", "client_order_id": "js-1", "side": "long", "margin": "250", "leverage": 4},
        {"type": "open", "client_order_id": "js-1", "side": "long", "margin": "250", "leverage": 4},
        {"type": "peek", "client_order_id": "js-2"},
    ]
    code, lines = run_js(server.url, server.token("alice"), actions, "fill")
    assert code == 0, lines
    sync = next(x for x in lines if x["kind"] == "sync")
    assert sync["data"]["state"]["player"] == "alice"
    acks = [x["data"] for x in lines if x["kind"] == "ack"]
    assert acks[0]["ok"] is True
    assert acks[1] == acks[0]  # the repeated client_order_id got the first answer
    assert (acks[2]["ok"], acks[2]["code"]) == (False, "peek_not_ready")
    events = [x["event"] for x in lines if x["kind"] == "event"]
    assert "phase" in events
    assert "fill" in events
    fills = [x["data"] for x in lines if x["kind"] == "event" and x["event"] == "fill"]
    assert [f["ref"] for f in fills] == ["js-1"]


def test_js_client_sees_the_refusal_reason(server: MatchServerProcess) -> None:
    code, lines = run_js(server.url, server.token("alice", match_id="m-elsewhere"), [], "fill")
    assert code == 2
    refusal = lines[-1]
    assert refusal["kind"] == "connect_error"
    assert refusal["data"]["code"] == "token_wrong_audience"
