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
from tradearena.testing.tls import SecretVolume, ThrowawayCA

JS = REPO / "tests" / "js"


def run_js(
    url: str,
    token: str,
    actions: list[dict[str, Any]],
    wait_for: str,
    options: tuple[str, ...] = (),
) -> tuple[int, list[dict[str, Any]]]:
    assert (JS / "node_modules" / "socket.io-client").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    done = subprocess.run(
        ["node", str(JS / "match_client.mjs"), url, token, json.dumps(actions), wait_for, *options],
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


@pytest.fixture
def tls_server(tmp_path: Path, redis_url: str) -> Iterator[tuple[MatchServerProcess, ThrowawayCA]]:
    ca = ThrowawayCA.create(tmp_path / "ca")
    volume = SecretVolume(tmp_path / "secret")
    volume.install(ca.issue(["*.play.test"]))
    proc = MatchServerProcess(
        tmp_path,
        redis_url,
        "m-js-tls",
        ("alice",),
        env_extra={"TRADEARENA_DURATION_MS": "600000"},
        tls=(volume.cert_file, volume.key_file),
        host_name="127-0-0-1.play.test",
    )
    proc.start()
    try:
        yield proc, ca
    finally:
        proc.stop()


def test_js_client_plays_over_wss_with_a_private_ca_and_a_host_map(
    tls_server: tuple[MatchServerProcess, ThrowawayCA],
) -> None:
    server, ca = tls_server
    assert server.url.startswith("https://127-0-0-1.play.test:")
    action = {
        "type": "open",
        "client_order_id": "w-1",
        "side": "long",
        "margin": "250",
        "leverage": 4,
    }
    dial = ("--ca", str(ca.cert_file), "--resolve", "*.play.test=127.0.0.1")
    code, lines = run_js(server.url, server.token("alice"), [action], "fill", dial)
    assert code == 0, lines
    assert [x["data"]["ok"] for x in lines if x["kind"] == "ack"] == [True]
    assert any(x["kind"] == "event" and x["event"] == "fill" for x in lines)
    # Without the CA the same client is refused by its own TLS check.
    code, lines = run_js(
        server.url, server.token("alice"), [], "fill", ("--resolve", "*.play.test=127.0.0.1")
    )
    assert code == 2 and lines[-1]["kind"] == "connect_error", lines
