"""A real Redis Cluster on loopback for the tests: three primaries with a replica each,
from Debian's redis-server, built with `redis-cli --cluster create`.

A short node timeout (1 s) makes a failover take a couple of seconds; a killed node is
restarted on its own port and data directory, and rejoins as a replica of the node that
took its slots over, as a managed service replaces a failed node.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from tradearena.launcher.localservices import ServiceError, _wait_port, find_redis_server, free_port

NODE_TIMEOUT_MS = 1000
BUS_PORT_OFFSET = 10_000  # a node's cluster bus listens on its port + this
MAX_NODE_PORT = 65_535 - BUS_PORT_OFFSET


def node_port() -> int:
    """A free port whose cluster bus port exists too (redis-server refuses others)."""
    while True:
        port = free_port()
        if port <= MAX_NODE_PORT:
            return port


@dataclass
class Node:
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=2)


@dataclass
class LocalRedisCluster:
    base_dir: Path
    primaries: int = 3
    replicas_per_primary: int = 1
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        live = next(n for n in self.nodes if n.running)
        return f"redis+cluster://{live.address}"

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 30) -> None:
        count = self.primaries * (1 + self.replicas_per_primary)
        self.nodes = [Node(node_port(), self.base_dir / f"node-{i}") for i in range(count)]
        for node in self.nodes:
            self._spawn(node)
        for node in self.nodes:
            assert node.proc is not None
            _wait_port(node.port, node.proc, "redis-server (cluster node)", timeout)
        redis_cli = shutil.which("redis-cli")
        if redis_cli is None:
            raise ServiceError("redis-cli not found: install the Debian package redis-tools")
        created = subprocess.run(
            [
                redis_cli,
                "--cluster",
                "create",
                *(n.address for n in self.nodes),
                "--cluster-replicas",
                str(self.replicas_per_primary),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if created.returncode != 0:
            raise ServiceError(
                f"redis-cli --cluster create failed: {created.stdout}{created.stderr}"
            )
        self.wait_healthy(timeout)

    def stop(self) -> None:
        for node in self.nodes:
            proc, node.proc = node.proc, None
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def _spawn(self, node: Node) -> None:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(),
            "--port",
            str(node.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(node.data_dir),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
            # A replica may always take over, however long it was cut off (tests kill
            # primaries soon after start).
            "--cluster-replica-validity-factor",
            "0",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--logfile",
            str(node.data_dir / "redis.log"),
            "--protected-mode",
            "yes",
        ]
        node.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # ------------------------------------------------------------------ topology
    def slots(self) -> dict[int, tuple[str, list[str]]]:
        """slot-range start -> (primary address, replica addresses), from a live node."""
        for node in self.nodes:
            if not node.running:
                continue
            with contextlib.suppress(redis.RedisError), node.client() as c:
                ranges: dict[int, tuple[str, list[str]]] = {}
                for row in c.execute_command("CLUSTER", "SLOTS"):
                    start, _end, primary, *replicas = row
                    ranges[int(start)] = (
                        _addr(primary),
                        [_addr(r) for r in replicas],
                    )
                return ranges
        raise ServiceError("no cluster node answers")

    def slot_of(self, key: str) -> int:
        return int(key_slot(key.encode()))

    def primary_for(self, key: str) -> Node:
        return self.node(self._owner(self.slot_of(key))[0])

    def replicas_for(self, key: str) -> list[Node]:
        return [self.node(a) for a in self._owner(self.slot_of(key))[1]]

    def node(self, address: str) -> Node:
        return next(n for n in self.nodes if n.address == address)

    def _owner(self, slot: int) -> tuple[str, list[str]]:
        for node in self.nodes:
            if not node.running:
                continue
            with contextlib.suppress(redis.RedisError), node.client() as c:
                for row in c.execute_command("CLUSTER", "SLOTS"):
                    start, end, primary, *replicas = row
                    if int(start) <= slot <= int(end):
                        return _addr(primary), [_addr(r) for r in replicas]
        raise ServiceError(f"no live node knows who serves slot {slot}")

    # ------------------------------------------------------------------ faults
    def kill(self, node: Node) -> None:
        """SIGKILL: no goodbye to the cluster, no last fsync."""
        assert node.proc is not None
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.wait()

    def restart(self, node: Node, timeout: float = 30) -> None:
        """Start a killed node again on its port and data (it rejoins as a replica)."""
        self._spawn(node)
        assert node.proc is not None
        _wait_port(node.port, node.proc, "redis-server (cluster node)", timeout)

    def wait_failover(self, key: str, old: Node, timeout: float = 30) -> Node:
        """Until another node serves `key`'s slot and the cluster says ok."""
        slot = self.slot_of(key)

        def promoted() -> bool:
            try:
                return self._owner(slot)[0] != old.address and self._state_ok()
            except ServiceError:
                return False

        _until(promoted, timeout, f"a replica to take slot {slot} over from {old.address}")
        return self.node(self._owner(slot)[0])

    def wait_healthy(self, timeout: float = 30) -> None:
        """Until every running node reports `cluster_state:ok` and every running replica's
        link to its primary is up."""

        def healthy() -> bool:
            for node in self.nodes:
                if not node.running:
                    continue
                try:
                    with node.client() as c:
                        info = c.execute_command("CLUSTER", "INFO")
                        text = info.decode() if isinstance(info, bytes) else str(info)
                        if "cluster_state:ok" not in text:
                            return False
                        repl = c.info("replication")
                        if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                            return False
                except redis.RedisError:
                    return False
            return True

        _until(healthy, timeout, "the Redis cluster to be healthy")

    def _state_ok(self) -> bool:
        for node in self.nodes:
            if node.running:
                with contextlib.suppress(redis.RedisError), node.client() as c:
                    info = c.execute_command("CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    return "cluster_state:ok" in text
        return False

    def flush(self) -> None:
        """Empty every primary (tests start from nothing)."""
        primaries = {p for p, _ in self.slots().values()}
        for address in primaries:
            with self.node(address).client() as c:
                c.flushall()


def _addr(row: list[object]) -> str:
    host = row[0].decode() if isinstance(row[0], bytes) else str(row[0])
    return f"{host}:{int(row[1])}"  # type: ignore[call-overload]


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise ServiceError(f"timed out after {timeout:.0f} s waiting for {what}")
