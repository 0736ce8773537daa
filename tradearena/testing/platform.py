"""`tradearena up` as a real process for end-to-end tests."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tradearena.launcher.localservices import free_port
from tradearena.testing.processes import kill_with_task_log

CLI = str(Path(sys.executable).parent / "tradearena")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory for `up`. Not under pytest's private tmp dir: PostgreSQL runs as
    its own user when we are root, and must reach it."""
    path = Path(tempfile.mkdtemp(prefix="tradearena-up-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def short_catalogue(path: Path, blitz_minutes: int = 1) -> Path:
    """The packaged catalogue with a shorter blitz, so a whole match fits in a test."""
    text = (ROOT / "tradearena" / "modes.toml").read_text()
    path.write_text(re.sub(r"(?m)^blitz = \d+", f"blitz = {blitz_minutes}", text))
    return path


@dataclass
class UpProcess:
    data_dir: Path
    catalogue: Path | None = None
    up_args: tuple[str, ...] = ()  # more options of `up` (e.g. --dedicated)
    env: dict[str, str] | None = None  # its environment (default: this process's)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _value(self, pattern: str) -> str:
        for line in self.lines:
            found = re.search(pattern, line)
            if found:
                return found.group(0)
        raise AssertionError(f"{pattern!r} not in the output of up:\n" + "\n".join(self.lines))

    @property
    def redis_url(self) -> str:
        return self._value(r"redis://[0-9.:]+/\d+")

    @property
    def dsn(self) -> str:
        return self._value(r"postgresql://\S+")

    def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("READY "):
                self._ready.set()
        self._ready.set()  # exited: unblock waiters

    def start(self, timeout: float = 120) -> None:
        args = [CLI]
        if self.catalogue is not None:
            args += ["--catalogue", str(self.catalogue)]
        args += ["up", "--data-dir", str(self.data_dir), "--lobby-port", str(self.port)]
        args += self.up_args
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            raise AssertionError("up did not get ready:\n" + "\n".join(self.lines))

    def stop(self, timeout: float = 90) -> int:
        """Its exit code after Ctrl-C; one that does not exit in time is killed, its
        output and what each of its tasks waited for in the failure."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log = self.data_dir / "logs" / "lobby.log"
            text = kill_with_task_log(self.proc, lambda: _text(log))
            tasks = [line for line in text.splitlines() if '"tasks' in line or '"task"' in line]
            raise AssertionError(
                f"up still running {timeout} s after Ctrl-C:\n"
                + "\n".join(self.lines[-100:] + tasks)
            ) from None

    def wait_for_line(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.lines))


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""
