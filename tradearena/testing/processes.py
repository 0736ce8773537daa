"""A long-running `tradearena` subcommand as a real process: it serves its probes, then
stops cleanly on SIGTERM (the process shell's promise, tradearena.process)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

CLI = str(Path(sys.executable).parent / "tradearena")
PROBES = ("/healthz", "/readyz", "/metrics")


def http_status(url: str) -> int | None:
    """The HTTP status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            code: int = resp.status
            return code
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def serves_probes_then_stops(
    command: str, env: Mapping[str, str], port: int, log: Path, within: float = 60
) -> None:
    """Start `tradearena <command>`; assert every probe answers 200 on `port` within
    `within` seconds and that SIGTERM then ends it with exit code 0."""
    with log.open("wb") as out:
        proc = subprocess.Popen([CLI, command], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + within
        pending = set(PROBES)
        while pending:  # readiness may take a moment (connections, a first lease call)
            assert proc.poll() is None, f"{command} exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{pending} not 200: {log.read_text()[-3000:]}"
            pending = {p for p in pending if http_status(f"http://127.0.0.1:{port}{p}") != 200}
            time.sleep(0.1)  # poll interval: a probe has no event to await
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def kill_with_task_log(proc: subprocess.Popen[Any], log_text: Callable[[], str]) -> str:
    """Kill a process that did not stop, after asking it (SIGUSR1) to log where each of
    its tasks waits; its log as it then is, for the failure."""
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while "tasks logged" not in log_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # another process writes its log: poll with a deadline
    proc.kill()
    proc.wait(10)
    return log_text()
