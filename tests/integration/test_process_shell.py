"""Every long-running subcommand goes through one process shell: a bad setting is one
line on stderr and exit code 2; good settings serve /healthz, /readyz and /metrics,
and SIGTERM stops the process cleanly.

Each runs as a real subprocess (`.venv/bin/tradearena <cmd>`) on real Redis and
PostgreSQL. The operator needs a Kubernetes API: only its bad-setting case is here
(its probes are covered in tests/cluster/test_operator_process.py). The shell's two
guards for a stop that hangs (SIGUSR1's task log, the exit after the main) run on a
small process of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tradearena.launcher.localservices import free_port
from tradearena.testing.processes import CLI, serves_probes_then_stops
from tradearena.tokens import generate_private_key_pem


@dataclass(frozen=True)
class Case:
    command: str
    bad: tuple[str, str]  # an environment variable and a value it refuses


BAD_SETTINGS = [
    Case("lobby", ("TRADEARENA_PORT", "eighty")),
    Case("matchserver", ("TRADEARENA_CLOCK_INTERVAL_MS", "often")),
    Case("feed-relay", ("TRADEARENA_RELAY_LEASE_TTL_MS", "long")),
    Case("results-worker", ("TRADEARENA_RESULTS_BATCH", "some")),
    Case("operator", ("TRADEARENA_OPERATOR_METRICS_PORT", "any")),
]


@pytest.mark.parametrize("case", BAD_SETTINGS, ids=lambda c: c.command)
def test_a_bad_setting_is_one_line_and_exit_code_2(case: Case) -> None:
    name, value = case.bad
    env = {**os.environ, name: value}
    done = subprocess.run(
        [CLI, case.command], env=env, capture_output=True, timeout=60, check=False, text=True
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{case.command}: invalid setting"), lines[0]
    assert name in lines[0]


def good_env(command: str, port: int, redis_url: str, dsn: str, tmp_path: Path) -> dict[str, str]:
    common = {**os.environ, "TRADEARENA_REDIS_URL": redis_url, "TRADEARENA_LOG_FORMAT": "text"}
    if command == "lobby":
        key = tmp_path / "signing.pem"
        key.write_bytes(generate_private_key_pem())
        return {
            **common,
            "TRADEARENA_DATABASE_URL": dsn,
            "TRADEARENA_PORT": str(port),
            "TRADEARENA_HOST": "127.0.0.1",
            "TRADEARENA_SIGNING_KEY_FILE": str(key),
            "TRADEARENA_ARGON2_MEMORY_KIB": "1024",
            "TRADEARENA_ARGON2_TIME_COST": "1",
        }
    if command == "matchserver":
        from tradearena.tokens import Signer

        public = tmp_path / "public.pem"
        public.write_bytes(Signer.from_pem(generate_private_key_pem()).public_pem())
        return {
            **common,
            "TRADEARENA_MATCH_ID": f"shell-{port}",
            "TRADEARENA_PLAYERS": "a,b",
            # All three probes on the admin port (the game port has no /metrics).
            "TRADEARENA_ADMIN_PORT": str(port),
            "TRADEARENA_PORT": str(free_port()),
            "TRADEARENA_HOST": "127.0.0.1",
            "TRADEARENA_PUBLIC_KEY_FILE": str(public),
            "TRADEARENA_FEED_SOURCE": "synthetic",
            "TRADEARENA_SYNTHETIC_INTERVAL_MS": "100",
            "TRADEARENA_LINGER_MS": "100",
        }
    if command == "feed-relay":
        return {
            **common,
            "TRADEARENA_RELAY_PORT": str(port),
            "TRADEARENA_RELAY_HOST": "127.0.0.1",
            "TRADEARENA_RELAY_SYMBOLS": f"SHELL{port}",
        }
    assert command == "results-worker"
    return {
        **common,
        "TRADEARENA_DATABASE_URL": dsn,
        "TRADEARENA_RESULTS_METRICS_PORT": str(port),
        "TRADEARENA_RESULTS_CONSUMER": f"shell-{port}",
    }


@pytest.mark.parametrize("command", ["lobby", "matchserver", "feed-relay", "results-worker"])
def test_good_settings_serve_the_probes_and_stop_on_sigterm(
    command: str, redis_url: str, lobby_dsn: str, tmp_path: Path
) -> None:
    port = free_port()
    env = good_env(command, port, redis_url, lobby_dsn, tmp_path)
    serves_probes_then_stops(command, env, port, tmp_path / f"{command}.log")


# A process built on the shell whose main is chosen by argv[1]: `stuck` returns 3 while
# a task it leaves behind ignores cancellation (so the loop's teardown never ends);
# `waits` names a task and waits for SIGTERM.
SHELL_SCRIPT = """
import asyncio, sys
from dataclasses import dataclass
from tradearena import process

@dataclass
class Settings:
    log_level: str = "INFO"
    log_format: str = "json"

async def stubborn():
    while True:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            pass

async def stuck(settings, stop):
    asyncio.get_running_loop().create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    return 3

async def waits(settings, stop):
    task = asyncio.create_task(stop.wait(), name="waiting-for-stop")
    print("started", flush=True)
    await task

process.EXIT_GRACE_S = 0.5
sys.exit(process.run_process("shell-test", Settings, {"stuck": stuck, "waits": waits}[sys.argv[1]]))
"""


def test_a_process_whose_main_returned_exits_with_its_code_even_if_teardown_hangs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SHELL_SCRIPT, "stuck"],
        capture_output=True,
        timeout=30,
        check=False,
        text=True,
    )
    assert done.returncode == 3, done.stderr
    assert "process did not exit after its main returned" in done.stdout  # the log
    assert "in _cancel_all_tasks" in done.stderr  # the threads' stacks: where it hung


def test_sigusr1_logs_every_task_with_its_stack_and_the_process_carries_on() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SHELL_SCRIPT, "waits"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None  # the JSON log, and "started"
        assert "started\n" in iter(proc.stdout.readline, "")
        proc.send_signal(signal.SIGUSR1)
        records = []
        for line in proc.stdout:
            records.append(json.loads(line))
            if records[-1]["message"] == "tasks logged":
                break
        tasks = {r["task"]: r["stack"] for r in records if r["message"] == "task"}
        assert "in wait\n  awaiting <Future pending" in tasks["waiting-for-stop"]
        main = next(stack for stack in tasks.values() if "in shell\n" in stack)
        assert "in waits\n  awaiting <Task pending name='waiting-for-stop'" in main
        assert records[-1]["tasks"] == len(tasks)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
