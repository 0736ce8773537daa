"""The stock JavaScript socket.io-client (from npm) on the lobby's /lobby namespace."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lobby.accounts.notifications import notify
from tradearena.testing.lobby import Client, register
from tradearena.testing.paths import REPO

JS = REPO / "tests" / "js"


async def _spawn(url: str, token: str) -> asyncio.subprocess.Process:
    assert (JS / "node_modules" / "socket.io-client").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    return await asyncio.create_subprocess_exec(
        "node",
        str(JS / "lobby_client.mjs"),
        url,
        token,
        "notification",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _line(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    raw = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert raw, "the JS client exited without a word"
    line: dict[str, Any] = json.loads(raw)
    return line


async def test_js_client_connects_and_receives_a_notification(lobby_client: Client) -> None:
    tokens = await register(lobby_client, "js_player")
    proc = await _spawn(str(lobby_client.make_url("")).rstrip("/"), tokens["access_token"])
    try:
        assert await _line(proc) == {"kind": "connected"}
        app = lobby_client.server.app
        assert app is not None
        note = await notify(app, tokens["user"]["id"], "match_ready", {"match_id": "m-js"})
        seen = await _line(proc)
        assert seen["kind"] == "event" and seen["event"] == "notification"
        assert seen["data"]["id"] == note.id and seen["data"]["payload"] == {"match_id": "m-js"}
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_js_client_sees_why_it_was_refused(lobby_client: Client) -> None:
    proc = await _spawn(str(lobby_client.make_url("")).rstrip("/"), "not-a-token")
    refusal = await _line(proc)
    assert await asyncio.wait_for(proc.wait(), 10) == 2
    assert refusal["kind"] == "connect_error"
    assert refusal["data"] == {"code": "token_malformed"}
    assert refusal["message"] == "the token is not a JWT"
