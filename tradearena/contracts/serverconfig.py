"""What a match server is given to run one match, built once for every runtime.

`server_config()` turns a match spec and the runtime's deployment choices into
entries, each naming a `MatchServerSettings` field (read from `TRADEARENA_<FIELD>`).
An entry is a plain value, a reference to a secret, or the path of a file the
runtime makes available. The local runtime turns them into environment values;
the operator's pod builder into container `env` (`value` / `secretKeyRef`) beside
the volume that holds the file. A unit test keeps every name a settings field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from tradearena.contracts.orchestration import MatchSpec, Scheme
from tradearena.settings import ENV_PREFIX


def env_name(field: str) -> str:
    """The environment variable a settings field is read from."""
    return f"{ENV_PREFIX}{field.upper()}"


@dataclass(frozen=True)
class Value:
    field: str
    value: str


@dataclass(frozen=True)
class SecretRef:
    """A value the server gets from a secret (a Kubernetes Secret's key)."""

    field: str
    secret: str
    key: str


@dataclass(frozen=True)
class FilePath:
    """The path of a file the runtime provides (in a pod: a mounted volume)."""

    field: str
    path: str


Entry = Value | SecretRef | FilePath


@dataclass(frozen=True)
class Secret:
    name: str
    key: str


@dataclass(frozen=True)
class TlsFiles:
    """Where the server finds its certificate chain and key (PEM); watched for changes."""

    cert_file: str
    key_file: str


@dataclass(frozen=True)
class ServerDeployment:
    """What the runtime decides for every match server it starts."""

    host: str  # the address the server binds
    redis: str | Secret  # the Redis URL, or the secret holding it
    verify_key: str  # path of the public key (PEM) or JWKS file tokens are checked with
    verify_key_kind: Literal["public_key_file", "jwks_file"] = "public_key_file"
    feed_source: str = "relay"
    log_format: str | None = None  # None: the server's default
    # The browser origins that may connect: the lobby's (where its web client is served).
    cors_origins: tuple[str, ...] = ()
    # The port of /metrics and /status (operator and Prometheus only); None: not served.
    admin_port: int | None = None
    # TLS on the players' port (wss://); None: plaintext.
    tls: TlsFiles | None = None
    # The mode catalogue file the lobby formed the match from; None: the packaged one.
    catalogue: str | None = None

    @property
    def scheme(self) -> Scheme:
        """The scheme of the address players are given."""
        return "https" if self.tls is not None else "http"


def server_config(spec: MatchSpec, port: int, deployment: ServerDeployment) -> list[Entry]:
    """Everything one dedicated match server needs, in a stable order."""
    entries: list[Entry] = [
        Value("match_id", spec.match_id),
        Value("players", ",".join(spec.players)),
        Value("mode", spec.mode),
        Value("format", spec.format),
        Value("symbol", spec.symbol),
    ]
    entries.extend(_deployment_entries(port, deployment))
    if spec.duration_ms:  # 0: the format's own length
        entries.append(Value("duration_ms", str(spec.duration_ms)))
    if spec.traceparent:  # the match's trace (W3C), when traced
        entries.append(Value("traceparent", spec.traceparent))
    return entries


def pool_server_config(
    server_id: str, capacity: int, port: int, deployment: ServerDeployment
) -> list[Entry]:
    """A pool server: no match of its own; it hosts up to `capacity` matches that an
    allocator assigns through Redis (`tradearena.contracts.pool`)."""
    return [
        Value("server_id", server_id),
        Value("capacity", str(capacity)),
        *_deployment_entries(port, deployment),
    ]


def _deployment_entries(port: int, d: ServerDeployment) -> list[Entry]:
    entries: list[Entry] = [
        Value("host", d.host),
        Value("port", str(port)),
        Value("feed_source", d.feed_source),
        Value("cors_origins", json.dumps(list(d.cors_origins))),
    ]
    if d.admin_port is not None:
        entries.append(Value("admin_port", str(d.admin_port)))
    if d.log_format is not None:
        entries.append(Value("log_format", d.log_format))
    entries.append(FilePath(d.verify_key_kind, d.verify_key))
    if d.catalogue is not None:
        entries.append(FilePath("catalogue", d.catalogue))
    if d.tls is not None:
        entries.append(FilePath("tls_cert_file", d.tls.cert_file))
        entries.append(FilePath("tls_key_file", d.tls.key_file))
    if isinstance(d.redis, Secret):
        entries.append(SecretRef("redis_url", d.redis.name, d.redis.key))
    else:
        entries.append(Value("redis_url", d.redis))
    return entries
