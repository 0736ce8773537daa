"""Launching and stopping one container process.

The node writes the container's launch plan (root layers, mounts, user, argv, env)
as JSON and starts ``launcher.py`` on it with the host Python; the launcher becomes
the container process (see its docstring). stdout/stderr go to log files under the
pod's state dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

LAUNCHER = Path(__file__).with_name("launcher.py")


def _write_plan(plan: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    plan_path = directory / "plan.json"
    plan_path.write_text(json.dumps(plan, indent=1))
    return plan_path


async def start(plan: dict[str, Any], directory: Path) -> asyncio.subprocess.Process:
    """Start the container described by `plan`; its logs go to directory/{stdout,stderr}.log."""
    plan_path = _write_plan(plan, directory)
    with (directory / "stdout.log").open("ab") as out, (directory / "stderr.log").open("ab") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            str(LAUNCHER),
            str(plan_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            env={},
        )


def signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


async def stop(proc: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM, up to `grace` seconds, then SIGKILL (the whole process group)."""
    if proc.returncode is None:
        signal_group(proc, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), grace)
    signal_group(proc, signal.SIGKILL)
    return await proc.wait()


def log_tail(directory: Path, lines: int = 20) -> str:
    out = []
    for name in ("stdout.log", "stderr.log"):
        path = directory / name
        if path.is_file():
            text = path.read_bytes()[-8192:].decode(errors="replace").splitlines()[-lines:]
            if text:
                out.append(f"--- {name}\n" + "\n".join(text))
    return "\n".join(out)
