"""The node's network: a Linux bridge carrying the node address, one network
namespace per pod joined to it by a veth pair, and Service ClusterIPs as /32
addresses on the bridge (the proxy listens on them).

Everything is done with ``ip`` from iproute2, as root. Names are derived from a
prefix unique to the node, so leftovers of a killed previous run are found and
removed (`cleanup`).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import signal
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

NETNS_DIR = Path("/run/netns")


class NetworkError(RuntimeError):
    pass


def _ip(*args: str, input: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        ["ip", *args], input=input, capture_output=True, text=True, timeout=30, check=False
    )
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def node_tag(node_name: str) -> str:
    return hashlib.sha256(node_name.encode()).hexdigest()[:5]


@dataclass
class Addresses:
    """The pod CIDR: .1 is the node (bridge) address, pods get the next free ones."""

    cidr: str
    used: set[str] = field(default_factory=set)

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def prefix(self) -> int:
        return self.network.prefixlen

    def allocate(self) -> str:
        for host in self.network.hosts():
            ip = str(host)
            if ip != self.gateway and ip not in self.used:
                self.used.add(ip)
                return ip
        raise NetworkError(f"no free address left in {self.cidr}")

    def release(self, ip: str) -> None:
        self.used.discard(ip)


def ensure_bridge(bridge: str, cidr: str) -> str:
    """Create (or reuse) the bridge with the node address; enable forwarding.
    Returns the node address. Idempotent: run it before creating the cluster so the
    API server certificate names this address."""
    addresses = Addresses(cidr)
    if not Path(f"/sys/class/net/{bridge}").exists():
        _ip("link", "add", bridge, "type", "bridge")
    _ip("addr", "replace", f"{addresses.gateway}/{addresses.prefix}", "dev", bridge)
    _ip("link", "set", bridge, "up")
    # No ip_forward: pod-to-pod traffic is switched by the bridge and pod-to-host traffic
    # (the node address, Service addresses on the bridge) is delivered locally.
    return addresses.gateway


def delete_bridge(bridge: str) -> None:
    if Path(f"/sys/class/net/{bridge}").exists():
        _ip("link", "del", bridge, check=False)


@dataclass(frozen=True)
class PodNetwork:
    netns: str
    veth: str
    ip: str

    @property
    def netns_path(self) -> str:
        return str(NETNS_DIR / self.netns)


def pod_names(prefix: str, pod_uid: str) -> tuple[str, str]:
    """(netns name, host-side veth name ≤ 15 chars) for a pod."""
    short = pod_uid.replace("-", "")[:8]
    return f"{prefix}-{short}", f"v{prefix[-6:]}{short}"[:15]


def add_pod(prefix: str, pod_uid: str, ip: str, addresses: Addresses, bridge: str) -> PodNetwork:
    netns, veth = pod_names(prefix, pod_uid)
    remove_netns(netns)
    _ip("netns", "add", netns)
    try:
        _ip(
            "-batch",
            "-",
            input=(
                f"link add {veth} type veth peer name eth0 netns {netns}\n"
                f"link set {veth} master {bridge}\n"
                f"link set {veth} up\n"
            ),
        )
        _ip(
            "-n",
            netns,
            "-batch",
            "-",
            input=(
                "link set lo up\n"
                f"addr add {ip}/{addresses.prefix} dev eth0\n"
                "link set eth0 up\n"
                f"route add default via {addresses.gateway}\n"
            ),
        )
    except BaseException:
        remove_netns(netns)
        raise
    return PodNetwork(netns, veth, ip)


def netns_pids(netns: str) -> list[int]:
    out = _ip("netns", "pids", netns, check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def remove_netns(netns: str) -> None:
    """Kill whatever still runs in the namespace, then delete it (its veth goes too)."""
    if not (NETNS_DIR / netns).exists():
        return
    for pid in netns_pids(netns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _ip("netns", "del", netns, check=False)


def node_netns(prefix: str) -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix + "-"))


def cleanup(prefix: str, bridge: str | None = None) -> None:
    """Remove every pod namespace of this node (and the bridge if named)."""
    for netns in node_netns(prefix):
        remove_netns(netns)
    if bridge:
        delete_bridge(bridge)


def set_service_addresses(bridge: str, wanted: Iterable[str], present: set[str]) -> set[str]:
    """Make the bridge carry exactly `wanted` as /32 service addresses."""
    wanted_set = set(wanted)
    for ip in sorted(wanted_set - present):
        _ip("addr", "replace", f"{ip}/32", "dev", bridge)
    for ip in sorted(present - wanted_set):
        _ip("addr", "del", f"{ip}/32", "dev", bridge, check=False)
    return wanted_set
