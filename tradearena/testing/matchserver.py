"""A real match-server process for tests: spawned with `tradearena matchserver`."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tradearena.launcher.localservices import free_port
from tradearena.testing.processes import kill_with_task_log
from tradearena.tokens import Signer, generate_private_key_pem

CLI = str(Path(sys.executable).parent / "tradearena")


@dataclass
class MatchServerProcess:
    workdir: Path
    redis_url: str
    match_id: str
    players: tuple[str, ...]
    env_extra: dict[str, str] = field(default_factory=dict)
    signer: Signer = field(default_factory=lambda: Signer.from_pem(generate_private_key_pem()))
    port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    # TLS on the game port: (certificate chain, key) files; the url is then https://.
    tls: tuple[Path, Path] | None = None
    # The name in `url` (e.g. 127-0-0-1.play.test, which a client's host map resolves).
    host_name: str = "127.0.0.1"

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_name}:{self.port}"

    @property
    def admin_url(self) -> str:
        """/status and /metrics (the game port serves neither)."""
        return f"http://127.0.0.1:{self.admin_port}"

    def token(self, player: str, match_id: str | None = None, ttl_s: int = 600) -> str:
        return self.signer.match_token(match_id or self.match_id, player, ttl_s)

    def env(self) -> dict[str, str]:
        key = self.workdir / "public.pem"
        key.write_bytes(self.signer.public_pem())
        return {
            **os.environ,
            "TRADEARENA_MATCH_ID": self.match_id,
            "TRADEARENA_PLAYERS": ",".join(self.players),
            "TRADEARENA_REDIS_URL": self.redis_url,
            "TRADEARENA_PORT": str(self.port),
            "TRADEARENA_ADMIN_PORT": str(self.admin_port),
            "TRADEARENA_HOST": "127.0.0.1",
            "TRADEARENA_PUBLIC_KEY_FILE": str(key),
            "TRADEARENA_FEED_SOURCE": "synthetic",
            "TRADEARENA_SYNTHETIC_INTERVAL_MS": "100",
            "TRADEARENA_LINGER_MS": "300",
            **self._tls_env(),
            **self.env_extra,
        }

    def _tls_env(self) -> dict[str, str]:
        if self.tls is None:
            return {}
        cert, key = self.tls
        return {
            "TRADEARENA_TLS_CERT_FILE": str(cert),
            "TRADEARENA_TLS_KEY_FILE": str(key),
            "TRADEARENA_TLS_RELOAD_INTERVAL_S": "0.2",
        }

    def start(self, wait_ready: bool = True) -> None:
        self.starts += 1
        log = (self.workdir / f"matchserver-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [CLI, "matchserver"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        probe = f"{self.scheme}://127.0.0.1:{self.port}/readyz"
        # Like the kubelet's HTTPS probe: encrypted, the certificate not checked.
        context = ssl._create_unverified_context() if self.tls is not None else None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"match server exited with {self.proc.returncode}: {self.logs()}"
                )
            try:
                with urllib.request.urlopen(probe, timeout=1, context=context) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"match server not ready within {timeout} s: {self.logs()}")

    def logs(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.workdir.glob("matchserver-*.log"))
        )

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        """Its exit code; one that does not exit in time is killed, its log (with what
        each of its tasks waited for) in the failure."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logs = kill_with_task_log(self.proc, self.logs)
            raise AssertionError(f"match server still running {timeout} s later: {logs}") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class PoolServerProcess(MatchServerProcess):
    """A pool server (`TRADEARENA_SERVER_ID`, `TRADEARENA_CAPACITY`): build it with
    `pool_server(...)`; its matches come from `assign(...)`."""

    server_id: str = "pool-1"
    capacity: int = 4

    def env(self) -> dict[str, str]:
        env = super().env()
        del env["TRADEARENA_MATCH_ID"], env["TRADEARENA_PLAYERS"]
        return {
            **env,
            "TRADEARENA_SERVER_ID": self.server_id,
            "TRADEARENA_CAPACITY": str(self.capacity),
            **self.env_extra,
        }

    def seat(self, match_id: str) -> HostedSeat:
        return HostedSeat(self, match_id)


def pool_server(
    workdir: Path,
    redis_url: str,
    server_id: str = "pool-1",
    capacity: int = 4,
    env_extra: dict[str, str] | None = None,
) -> PoolServerProcess:
    return PoolServerProcess(
        workdir,
        redis_url,
        "",
        (),
        env_extra=env_extra or {},
        server_id=server_id,
        capacity=capacity,
    )


@dataclass(frozen=True)
class HostedSeat:
    """One match of a pool server, as a `MatchClient` dials it: the server's one port,
    a token for this match."""

    server: MatchServerProcess
    match_id: str

    @property
    def url(self) -> str:
        return self.server.url

    def token(self, player: str) -> str:
        return self.server.token(player, self.match_id)
