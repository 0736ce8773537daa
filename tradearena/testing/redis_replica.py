"""A real Redis primary with one replica on loopback (Debian's redis-server), for the
durability tests: the replica can be frozen (SIGSTOP) and thawed, so a write that waits
for it visibly waits."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tradearena.launcher.localservices import (
    LocalRedis,
    ServiceError,
    _wait_port,
    find_redis_server,
    free_port,
)


@dataclass
class LocalReplica:
    """`redis-server --replicaof` the primary on `primary_port`."""

    data_dir: Path
    primary_port: int
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self, timeout: float = 15) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        args = [
            find_redis_server(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--replicaof",
            "127.0.0.1",
            str(self.primary_port),
            "--logfile",
            str(self.data_dir / "redis.log"),
            "--protected-mode",
            "yes",
        ]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self._proc, "redis-server (replica)", timeout)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def freeze(self) -> None:
        """SIGSTOP: connected, but acknowledging nothing."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=2)


@dataclass
class ReplicatedRedis:
    """A primary (`url`) and its replica."""

    base_dir: Path
    primary: LocalRedis = field(init=False)
    replica: LocalReplica = field(init=False)

    def __post_init__(self) -> None:
        self.primary = LocalRedis(self.base_dir / "primary", appendonly=False)

    @property
    def url(self) -> str:
        return self.primary.url

    def start(self, timeout: float = 15) -> None:
        self.primary.start(timeout)
        self.replica = LocalReplica(self.base_dir / "replica", self.primary.port)
        self.replica.start(timeout)
        self.wait_synced(timeout)

    def stop(self) -> None:
        self.replica.stop()
        self.primary.stop()

    def wait_synced(self, timeout: float = 15) -> None:
        """Until the primary counts its replica online."""
        deadline = time.monotonic() + timeout
        with redis.Redis.from_url(self.primary.url) as c:
            while time.monotonic() < deadline:
                info = c.info("replication")
                if info.get("slave0", {}).get("state") == "online":
                    return
                time.sleep(0.05)
        raise ServiceError("the replica did not come online")
