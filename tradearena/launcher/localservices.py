"""Local Redis and PostgreSQL server processes, for `up` and for the tests.

Both run from the Debian packages' binaries with their data under a directory
we own, on loopback, and stop cleanly. PostgreSQL refuses to run as root, so
when we are root it runs as the `postgres` system user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class ServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"{what} exited with status {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ServiceError(f"{what} did not accept connections on port {port} within {timeout:.0f} s")


def find_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise ServiceError("redis-server not found: install the Debian package redis-server")
    return path


def find_postgres_bindir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent
    raise ServiceError(
        "PostgreSQL server binaries not found: install the Debian package postgresql"
    )


@dataclass
class LocalRedis:
    data_dir: Path
    port: int = 0
    appendonly: bool = True  # fsync'd journal: acknowledged writes survive a restart
    # Extra addresses to listen on (tests reach it from pod network namespaces, as pods
    # reach ElastiCache) and an AUTH password; loopback only and none by default.
    extra_hosts: tuple[str, ...] = ()
    password: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        args = [
            find_redis_server(),
            "--port",
            str(self.port),
            "--bind",
            " ".join(("127.0.0.1", *self.extra_hosts)),
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--logfile",
            str(self.data_dir / "redis.log"),
            "--protected-mode",
            "yes",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        _wait_port(self.port, self._proc, "redis-server", timeout)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def wait(self) -> int:
        """Block until the server started last has ended: its exit status (a negative
        signal number when killed)."""
        proc = self._proc
        if proc is None:
            raise ServiceError("redis-server was not started")
        return proc.wait()


@dataclass
class LocalPostgres:
    data_dir: Path
    port: int = 0
    database: str = "tradearena"
    user: str = "tradearena"
    # Extra addresses to listen on and the network allowed to log in from there with a
    # password (tests reach it from pod network namespaces, as pods reach RDS).
    extra_hosts: tuple[str, ...] = ()
    remote_cidr: str | None = None
    password: str | None = None
    _bindir: Path = field(default_factory=find_postgres_bindir, init=False, repr=False)

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run_as(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        return ["runuser", "-u", "postgres", "--"]

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _pg(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [*self._run_as(), str(self._bindir / tool), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if check and done.returncode != 0:
            raise ServiceError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def _check_reachable(self) -> None:
        """As root we run PostgreSQL as `postgres`: every parent must let it through."""
        if os.geteuid() != 0:
            return
        for parent in self.data_dir.resolve().parents:
            if not parent.stat().st_mode & 0o001:
                raise ServiceError(
                    f"PostgreSQL runs as the postgres user, which cannot enter {parent}; "
                    "choose a data directory whose parents are world-searchable (e.g. under /tmp)"
                )

    def start(self, timeout: float = 30) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._check_reachable()
        self._chown(self.data_dir)
        if not self.port:
            self.port = free_port()
        fresh = not (self.pgdata / "PG_VERSION").exists()
        if fresh:
            self._pg(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                self.user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
        if fresh and self.remote_cidr:
            hba = self.pgdata / "pg_hba.conf"
            with hba.open("a") as f:
                f.write(f"host all all {self.remote_cidr} scram-sha-256\n")
        listen = ",".join(("127.0.0.1", *self.extra_hosts))
        opts = (
            f"-p {self.port} -c listen_addresses={listen} -c unix_socket_directories='' "
            "-c fsync=on -c max_connections=200"
        )
        self._pg(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-o",
            opts,
            "-l",
            str(self.data_dir / "postgres.log"),
            "-w",
            "-t",
            str(int(timeout)),
            "start",
        )
        _wait_port(self.port, None, "postgres", timeout)
        if fresh:
            self._pg(
                "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database
            )
            if self.password:
                self._pg(
                    "psql",
                    *(
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(self.port),
                        "-U",
                        self.user,
                        "-d",
                        self.database,
                    ),
                    "-c",
                    "ALTER USER CURRENT_USER PASSWORD '{}'".format(
                        self.password.replace("'", "''")
                    ),
                )

    def stop(self, mode: str = "fast") -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop", check=False)

    @property
    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    @property
    def pid(self) -> int | None:
        """The postmaster's pid from its lock file (which a killed server leaves behind)."""
        try:
            first = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (OSError, ValueError):
            return None
