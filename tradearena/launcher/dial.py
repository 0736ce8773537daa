"""How a client dials a match server: which CA it trusts and, optionally, a host map.

Match servers are advertised by name (`wss://1-2-3-4.play.example.com:7012`); a test
or a staging client may need to reach such names without DNS records and trust a
private CA without touching the system's files. `DialOptions` holds both and builds
the aiohttp session a Socket.IO client dials with (`socketio.AsyncClient(
http_session=options.session)`).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver


def mapped_host(hosts: Mapping[str, str], host: str) -> str | None:
    """The address a name maps to: an exact entry, else the longest `*.suffix` entry."""
    host = host.lower().rstrip(".")
    if host in hosts:
        return hosts[host]
    wildcards = [
        (len(pattern), target)
        for pattern, target in hosts.items()
        if pattern.startswith("*.") and host.endswith(pattern[1:])
    ]
    return max(wildcards)[1] if wildcards else None


class HostMapResolver(AbstractResolver):
    """Resolves the mapped names to their addresses, every other name as usual."""

    def __init__(self, hosts: Mapping[str, str]) -> None:
        self.hosts = {k.lower(): v for k, v in hosts.items()}
        self._fallback = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        target = mapped_host(self.hosts, host)
        results = await self._fallback.resolve(target or host, port, family)
        return [{**r, "hostname": host} for r in results]

    async def close(self) -> None:
        await self._fallback.close()


@dataclass(frozen=True)
class DialOptions:
    """`ca_file`: a PEM bundle trusted instead of the system's (None: the system's).
    `hosts`: name (or `*.suffix`) -> address, like an /etc/hosts of this client only."""

    ca_file: Path | None = None
    hosts: Mapping[str, str] = field(default_factory=dict)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def session(self) -> aiohttp.ClientSession:
        """A new session dialing with these options (its owner closes it)."""
        connector = aiohttp.TCPConnector(
            ssl=self.ssl_context(),
            resolver=HostMapResolver(self.hosts) if self.hosts else None,
        )
        return aiohttp.ClientSession(connector=connector)


def parse_hosts(values: list[str]) -> dict[str, str]:
    """`NAME=ADDRESS` items (a command line's --resolve) as a host map."""
    hosts: dict[str, str] = {}
    for item in values:
        name, sep, address = item.partition("=")
        if not sep or not name or not address:
            raise ValueError(f"expected NAME=ADDRESS, got {item!r}")
        hosts[name.strip().lower()] = address.strip()
    return hosts
