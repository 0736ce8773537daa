"""The match server's /status and /metrics are on an admin port of their own.

The game port is open to every player (a host port on a public node); what a match
server says about itself (every player's connection, the phase, every counter) is for
the operator and Prometheus, whom the chart's NetworkPolicy alone lets reach the admin
port. The kubelet's probes (/healthz, /readyz) stay on the game port. Real process,
real Redis.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tradearena.testing.matchserver import MatchServerProcess


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[MatchServerProcess]:
    proc = MatchServerProcess(tmp_path, redis_url, "m-admin", ("alice", "bob"))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


async def test_status_and_metrics_only_on_the_admin_port(
    server: MatchServerProcess,
) -> None:
    proc, admin = server, server.admin_url
    for path in ("/status", "/metrics"):
        status, _ = await _get(f"{proc.url}{path}")
        assert status == 404, path
    status, body = await _get(f"{admin}/status")
    assert status == 200 and json.loads(body)["match_id"] == "m-admin"
    status, body = await _get(f"{admin}/metrics")
    assert status == 200 and "tradearena_match_players_connected" in body
    # Where the kubelet probes them: the game port.
    assert (await _get(f"{proc.url}/healthz"))[0] == 200
    assert (await _get(f"{proc.url}/readyz"))[0] == 200
