"""Two friends form a party in the browser and play one casual match together, against
`tradearena up` (short catalogue): `tests/js/browser_party.mjs` drives both pages (the
invitation arrives live; revoked, it leaves both pages; invited again and accepted, the
party is disbanded by the leader and leaves both pages; formed once more, the leader
queues casual); once the party waits,
four solo players join the casual queue of the same mode through the API, which fills
the match (`standard` starts at 6 players). Both friends must open the same match, the
match must be recorded `casual` in match_options, and a party member asking for ranked
is refused with `party_ranked`. Screenshots are kept under `artifacts/web/party/`."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tradearena.testing.browser import CHROMIUM, JS
from tradearena.testing.lobby import PASSWORD
from tradearena.testing.platform import ROOT, UpProcess, short_catalogue

ARTIFACTS = ROOT / "artifacts" / "web" / "party"
MODE, FORMAT = "standard", "blitz"


async def register(http: aiohttp.ClientSession, url: str, username: str) -> dict[str, Any]:
    resp = await http.post(
        url + "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
    )
    body: dict[str, Any] = await resp.json()
    assert resp.status == 201, body
    return body


async def test_two_friends_form_a_party_and_play_one_casual_match(
    tmp_path: Path, data_dir: Path
) -> None:
    assert CHROMIUM.is_file(), "no /usr/bin/chromium: run scripts/bootstrap.sh as root"
    assert (JS / "node_modules" / "playwright-core").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    up = UpProcess(data_dir / "var", short_catalogue(tmp_path / "modes.toml"))
    up.start()
    tag = format(int(time.time()) % 100_000, "05d")
    leader, friend = f"lead-{tag}", f"pal-{tag}"
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession() as http:
            for name in (leader, friend):
                await register(http, up.url, name)
            solos = [await register(http, up.url, f"solo{i}-{tag}") for i in range(4)]
            proc = await asyncio.create_subprocess_exec(
                "node",
                str(JS / "browser_party.mjs"),
                up.url,
                str(ARTIFACTS),
                leader,
                friend,
                PASSWORD,
                MODE,
                FORMAT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            assert proc.stdout is not None and proc.stderr is not None
            stderr = asyncio.ensure_future(proc.stderr.read())
            lines = []
            try:
                async with asyncio.timeout(120):
                    while line := (await proc.stdout.readline()).decode().strip():
                        lines.append(line)
                        if line == "QUEUED":  # the party waits: solo players fill the match
                            for solo in solos:
                                resp = await http.post(
                                    up.url + "/api/v1/queue",
                                    json={"mode": MODE, "format": FORMAT, "queue": "casual"},
                                    headers={"Authorization": f"Bearer {solo['access_token']}"},
                                )
                                assert resp.status == 201, await resp.text()
                    await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            log = (await stderr).decode()
        assert lines, f"the browser script printed nothing:\n{log[-4000:]}"
        summary: dict[str, Any] = json.loads(lines[-1])
        assert proc.returncode == 0 and summary["ok"], f"{summary}\n{log[-6000:]}"
        seconds = time.monotonic() - started

        match_id = summary["leader_match"]
        assert summary["friend_match"] == match_id
        assert summary["ranked"] == {"status": 409, "code": "party_ranked"}
        conn = await asyncpg.connect(up.dsn)
        try:
            kind = await conn.fetchval(
                "SELECT kind FROM match_options WHERE match_id = $1", match_id
            )
        finally:
            await conn.close()
        assert kind == "casual"
        shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
        assert len(shots) == summary["screenshots"] == 5, shots
        assert seconds < 90, seconds
    finally:
        code = up.stop()
    assert code == 0
