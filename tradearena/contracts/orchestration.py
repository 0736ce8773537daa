"""What the lobby needs from any runtime that runs match servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from tradearena.contracts.phases import MatchPhase


@dataclass(frozen=True)
class MatchSpec:
    match_id: str
    mode: str
    format: str
    duration_ms: int
    players: tuple[str, ...]
    symbol: str = "BTCUSDT"
    traceparent: str | None = None  # the match's trace (W3C), from its formation


# How players reach a match server: http (Socket.IO over ws://) or https (over wss://,
# the server holds a certificate for `address`).
Scheme = Literal["http", "https"]
SCHEMES: tuple[Scheme, ...] = ("http", "https")


@dataclass(frozen=True)
class MatchStatus:
    match_id: str
    phase: MatchPhase
    address: str | None = None  # where players connect (host name or IP)
    port: int | None = None
    reason: str | None = None
    restarts: int = 0
    detail: dict[str, str] = field(default_factory=dict)
    scheme: Scheme = "http"  # what the runtime reports the server speaks

    @property
    def url(self) -> str | None:
        """The address players are given, as is: `<scheme>://<address>:<port>`."""
        if self.address is None or self.port is None:
            return None
        return f"{self.scheme}://{self.address}:{self.port}"


class OrchestratorUnavailableError(ConnectionError):
    """The runtime's control plane did not answer, or answered with its own error: the
    request may succeed later. A `ConnectionError`, so the lobby answers it like any
    unavailable dependency (503 `dependency_unavailable`, Retry-After)."""


class Orchestrator(Protocol):
    async def start(self, spec: MatchSpec) -> None:
        """Ask for a server; returns once the request is recorded (not when Ready)."""

    async def status(self, match_id: str) -> MatchStatus | None: ...

    def watch(self, match_id: str) -> AsyncIterator[MatchStatus]:
        """Every phase change of one match, ending after a terminal phase."""
        ...

    async def cancel(self, match_id: str, reason: str) -> None: ...

    async def list_active(self) -> list[MatchStatus]: ...
