"""`tradearena up` supervises what it starts: a child that dies (SIGKILL) is restarted
with a backoff and a console line, serves its probes again, and results are still
stored; one that keeps dying stops everything with a non-zero exit; the results
worker rides out a Redis restart without dying; SIGUSR1 logs where each of up's tasks
waits and up carries on."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as aioredis

from tradearena.contracts import keys
from tradearena.testing.platform import UpProcess
from tradearena.testing.results_factory import make_result, make_users


def children(parent: int) -> dict[int, str]:
    """The live child processes of `parent`: pid -> command line."""
    out: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[1]) == parent:
            out[int(entry.name)] = cmdline
    return out


def child_pid(up: UpProcess, marker: str, other_than: int | None = None, within: float = 30) -> int:
    """The pid of up's child whose command line contains `marker` (a new one if `other_than`)."""
    assert up.proc is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = [p for p, cmd in children(up.proc.pid).items() if marker in cmd and p != other_than]
        if found:
            return found[0]
        if up.proc.poll() is not None:
            break
        time.sleep(0.1)  # processes appear in /proc: there is no event to wait for
    raise AssertionError(f"no child {marker!r} of up:\n" + "\n".join(up.lines))


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def postgres_running(up: UpProcess) -> bool:
    return (up.data_dir / "postgres" / "pgdata" / "postmaster.pid").exists()


def status(up: UpProcess) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((up.data_dir / "status.json").read_text())
    return data


async def ready(url: str, within: float = 30) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, asyncio.timeout(within):
        while True:
            try:
                async with http.get(f"{url}/readyz") as resp:
                    if resp.status == 200:
                        body: dict[str, Any] = await resp.json()
                        return body
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)  # the restarted process is still starting


async def a_result_is_stored(up: UpProcess, match_id: str, within: float = 60) -> None:
    users = await make_users(up.dsn, 2, prefix=match_id)
    redis = aioredis.Redis.from_url(up.redis_url)
    try:
        result = make_result(match_id, users, seed=3)
        await redis.xadd(keys.RESULTS_STREAM, {"result": result.model_dump_json()})
    finally:
        await redis.aclose()
    conn = await asyncpg.connect(up.dsn)
    try:
        async with asyncio.timeout(within):
            while True:
                if await conn.fetchval("SELECT count(*) FROM matches WHERE id = $1", match_id):
                    return
                await asyncio.sleep(0.2)  # the worker is another process
    finally:
        await conn.close()


async def test_up_restarts_a_killed_results_worker_and_relay(data_dir: Path) -> None:
    up = UpProcess(data_dir / "var")
    up.start()
    try:
        await a_result_is_stored(up, "before")
        for name in ("results-worker", "feed-relay"):
            old = child_pid(up, name)
            os.kill(old, signal.SIGKILL)
            new = child_pid(up, name, other_than=old)
            up.wait_for_line(
                rf"^!! {name} exited \(killed by SIGKILL\); "
                rf"restarted \(restart 1, after [0-9.]+ s, pid {new}\)$",
                30,
            )
            child = status(up)["children"][name]
            assert child["restarts"] == 1
            assert child["pid"] == new
            await ready(child["probe"])
        await a_result_is_stored(up, "after")
        assert status(up)["state"] == "ready"
        # The same counts as a metric, on the lobby's /metrics.
        async with aiohttp.ClientSession() as http, http.get(f"{up.url}/metrics") as resp:
            text = await resp.text()
        for name in ("results-worker", "feed-relay"):
            assert f'tradearena_up_child_restarts_total{{child="{name}"}} 1.0' in text
        # SIGUSR1 logs where each task waits (for an up that does not stop), and up goes on.
        assert up.proc is not None
        up.proc.send_signal(signal.SIGUSR1)
        records = await log_records(data_dir / "var" / "logs" / "lobby.log", "tasks logged")
        waiting = [r for r in records if r["message"] == "task"]
        assert records[-1]["tasks"] == len(waiting) > 0
        assert any("in run_up\n" in r["stack"] for r in waiting), waiting
        assert status(up)["state"] == "ready"
    finally:
        code = up.stop()
    assert code == 0


async def log_records(path: Path, until: str, within: float = 10) -> list[dict[str, Any]]:
    """The JSON records of `path` up to the first whose message is `until`."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = await asyncio.to_thread(path.read_text)
        records = [json.loads(line) for line in text.splitlines() if line]
        for i, record in enumerate(records):
            if record["message"] == until:
                return records[: i + 1]
        await asyncio.sleep(0.1)  # the log is another process's file
    raise AssertionError(f"no {until!r} in {path}")


async def test_up_stops_everything_with_a_non_zero_exit_when_a_child_keeps_dying(
    data_dir: Path,
) -> None:
    up = UpProcess(data_dir / "var")
    up.start()
    assert up.proc is not None
    started = children(up.proc.pid)
    try:
        pid = None
        for _ in range(5):
            pid = child_pid(up, "results-worker", other_than=pid)
            os.kill(pid, signal.SIGKILL)
        code = up.proc.wait(60)
    finally:
        if up.proc.poll() is None:
            up.stop()
    assert code == 1, "\n".join(up.lines)
    assert "!! results-worker failed 5 times within 60 s; stopping everything" in up.lines
    assert status(up)["state"] == "failed"
    assert started and not [cmd for pid, cmd in started.items() if alive(pid)]
    assert not postgres_running(up)


async def test_the_results_worker_rides_out_a_redis_restart(data_dir: Path) -> None:
    up = UpProcess(data_dir / "var")
    up.start()
    try:
        worker = child_pid(up, "results-worker")
        os.kill(child_pid(up, "redis-server"), signal.SIGKILL)
        up.wait_for_line(
            r"^!! redis exited \(killed by SIGKILL\); restarted \(restart 1, after [0-9.]+ s, pid \d+\)$",
            30,
        )
        await a_result_is_stored(up, "after-redis")
        assert child_pid(up, "results-worker") == worker  # the same process: it never died
        assert status(up)["children"]["results-worker"]["restarts"] == 0
    finally:
        code = up.stop()
    assert code == 0
