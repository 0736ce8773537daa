"""Hostile bytes against a real `tradearena lobby` process: undecodable Socket.IO and
Engine.IO packets and an oversized bearer header get bounded, token-free log lines (no
traceback per packet) and are counted; the lobby keeps serving."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import aiohttp

from tradearena.launcher.localservices import free_port
from tradearena.testing.hostile import oversized_bearer_request, send_bad_packets
from tradearena.testing.lobby import lobby_process_env, wait_ready

SECRET = "hunter2-" + "s3cr3t" * 3000
_BAD_INPUT = re.compile(r"^lobby_bad_input_total\{[^}]*\} (\S+)$", re.MULTILINE)


async def test_bad_packets_and_huge_headers_log_bounded_lines(
    lobby_dsn: str, redis_url: str, signing_key_pem: str, tmp_path: Path
) -> None:
    port = free_port()
    env = lobby_process_env(lobby_dsn, redis_url, signing_key_pem, tmp_path, port)
    log_path = tmp_path / "lobby.log"  # a file, not a pipe: a flood of lines never blocks it
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tradearena.launcher.cli",
            "lobby",
            env=env,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(base_url=base) as http:
            await wait_ready(base, proc)
            sent = 0
            for _ in range(20):
                sent += await send_bad_packets(base, "/lobby")
            status, reply = await oversized_bearer_request("127.0.0.1", port, SECRET)
            assert 400 <= status < 500, reply
            dropped = 0.0
            for _ in range(100):  # the lobby may still be reading the last packets
                async with http.get("/metrics") as resp:
                    dropped = sum(map(float, _BAD_INPUT.findall(await resp.text())))
                if dropped >= sent + 1:
                    break
                await asyncio.sleep(0.05)
            assert dropped >= sent + 1  # the packets and the oversized header
            async with http.get("/readyz") as resp:
                assert resp.status == 200  # still serving
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    text = log_path.read_text(errors="replace")
    assert "s3cr3t" not in text and "hunter2" not in text
    assert "Traceback" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    noisy = [e for e in lines if e.get("level") in ("WARNING", "ERROR")]
    assert len(noisy) <= 12, noisy  # a few summary lines, not one per packet
    assert all(len(line) < 1000 for line in text.splitlines())
