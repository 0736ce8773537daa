"""Hostile bytes against a real match-server process: undecodable Socket.IO and
Engine.IO packets and an oversized bearer header get bounded, token-free log lines
(no traceback per packet) and are counted; the server keeps serving."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tradearena.testing.hostile import oversized_bearer_request, send_bad_packets
from tradearena.testing.matchserver import MatchServerProcess

SECRET = "hunter2-" + "s3cr3t" * 3000
_BAD_INPUT = re.compile(r"^tradearena_match_bad_input_total\{[^}]*\} (\S+)$", re.MULTILINE)


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[MatchServerProcess]:
    proc = MatchServerProcess(
        tmp_path, redis_url, "m-hostile", ("alice", "bob"), {"TRADEARENA_DURATION_MS": "600000"}
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_bad_packets_and_huge_headers_log_bounded_lines(
    server: MatchServerProcess,
) -> None:
    sent = 0
    for _ in range(20):
        sent += await send_bad_packets(server.url, "/match")
    status, reply = await oversized_bearer_request("127.0.0.1", server.port, SECRET)
    assert 400 <= status < 500, reply
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/readyz") as resp:
            assert resp.status == 200  # still serving
        # every bad input counted (the server may still be reading the last ones)
        dropped = 0.0
        for _ in range(100):
            async with http.get(f"{server.admin_url}/metrics") as resp:
                metrics = await resp.text()
            dropped = sum(map(float, _BAD_INPUT.findall(metrics)))
            if dropped >= sent + 1:
                break
            await asyncio.sleep(0.05)
    assert dropped >= sent + 1  # the packets and the oversized header
    text = server.logs()
    assert "s3cr3t" not in text and "hunter2" not in text
    assert "Traceback" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    noisy = [e for e in lines if e.get("level") in ("WARNING", "ERROR")]
    # a few summary lines, not one per packet
    assert len(noisy) <= 12, noisy
    assert all(len(line) < 1000 for line in text.splitlines())
