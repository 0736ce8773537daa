"""Feed relay replicas as real `tradearena feed-relay` processes (tests and bench).

Each replica gets its own health port and log file; the stream and the lease
are read straight from Redis, which is what match servers see.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tradearena.contracts import keys
from tradearena.launcher.localservices import free_port


def tradearena_script() -> str:
    script = Path(sys.executable).parent / "tradearena"
    if not script.exists():
        raise RuntimeError(f"{script} not found: run scripts/bootstrap.sh")
    return str(script)


@dataclass
class RelayProcess:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def get(self, path: str, timeout: float = 2) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metric(self, name: str, symbol: str = "BTCUSDT") -> float:
        _, text = self.get("/metrics")
        prefix = f'{name}{{symbol="{symbol}"}} '
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix) :])
        return 0.0

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class RelayCluster:
    """N replicas of one symbol's relay against one Redis."""

    redis_url: str
    log_dir: Path
    symbol: str = "BTCUSDT"
    interval_ms: int = 50  # 20 ticks/s
    extra_env: dict[str, str] = field(default_factory=dict)
    replicas: dict[str, RelayProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The sync client returns bytes here (no decode_responses); its stubs say "Any | str".
        self.redis: Any = redis.Redis.from_url(self.redis_url)
        self.stream = keys.feed_stream(self.symbol)
        self.lease = keys.feed_leader(self.symbol)

    def start(self, name: str) -> RelayProcess:
        port = free_port()
        env = {
            **os.environ,
            "TRADEARENA_REDIS_URL": self.redis_url,
            "TRADEARENA_RELAY_ID": name,
            "TRADEARENA_RELAY_HOST": "127.0.0.1",
            "TRADEARENA_RELAY_PORT": str(port),
            "TRADEARENA_RELAY_SYMBOLS": self.symbol,
            "TRADEARENA_RELAY_SOURCE": "synthetic",
            "TRADEARENA_RELAY_SYNTHETIC_INTERVAL_MS": str(self.interval_ms),
            **self.extra_env,
        }
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [tradearena_script(), "feed-relay"], env=env, stdout=log, stderr=log
            )
        replica = RelayProcess(name, port, proc, log_path)
        self.replicas[name] = replica
        return replica

    def wait_healthy(self, replica: RelayProcess, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not replica.alive:
                raise RuntimeError(f"{replica.name} exited: {replica.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                if replica.get("/readyz")[0] == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{replica.name} not ready within {timeout} s")

    def leader(self) -> str | None:
        holder = self.redis.get(self.lease)
        return None if holder is None else holder.decode().split(":")[0]

    def entries(self) -> list[tuple[str, dict[str, str]]]:
        return [
            (i.decode(), {k.decode(): v.decode() for k, v in f.items()})
            for i, f in self.redis.xrange(self.stream)
        ]

    def wait_for(self, condition: object, timeout: float = 30, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(condition) and condition():
                return
            time.sleep(0.02)
        raise TimeoutError(f"{what} not met within {timeout} s")

    def first_tick_from_other_than(
        self, old: str, after_id: str, timeout: float
    ) -> tuple[str, str, int]:
        """Block on the stream until an entry from another replica: its id, relay, recv_ms."""
        last = after_id
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.redis.xread({self.stream: last}, block=100, count=100)
            for entry_id, fields in reply[0][1] if reply else []:
                last = entry_id.decode()
                relay = fields[b"relay"].decode()
                if relay != old:
                    return last, relay, int(fields[b"recv_ms"])
        raise TimeoutError(f"no tick from a replica other than {old} within {timeout} s")

    def last_id(self) -> str:
        last = self.redis.xrevrange(self.stream, count=1)
        return last[0][0].decode() if last else "0-0"

    def last_id_before(self, entry_id: str) -> str:
        prev = self.redis.xrevrange(self.stream, max=f"({entry_id}", count=1)
        return prev[0][0].decode() if prev else "0-0"

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        replica = self.replicas[name]
        replica.proc.send_signal(sig)
        return replica.proc.wait(30)

    def stop_all(self) -> None:
        for replica in self.replicas.values():
            if replica.alive:
                replica.proc.terminate()
        for replica in self.replicas.values():
            try:
                replica.proc.wait(10)
            except subprocess.TimeoutExpired:
                replica.proc.kill()
                replica.proc.wait()
        self.redis.close()


@contextlib.contextmanager
def relay_cluster(redis_url: str, log_dir: Path, names: list[str]) -> Iterator[RelayCluster]:
    cluster = RelayCluster(redis_url, log_dir)
    try:
        for name in names:
            cluster.start(name)
        for name in names:
            cluster.wait_healthy(cluster.replicas[name])
        yield cluster
    finally:
        cluster.stop_all()
