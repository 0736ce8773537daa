"""Pool servers: what an allocator hands a running match server, and what the server
reports back, both through Redis (`contracts.keys.server_*`).

A pool server is a `tradearena matchserver` started with `server_id` and `capacity`
(`serverconfig.pool_server_config`) instead of one match's settings. It is Ready
with no match; an allocator (the operator, or the local pool of `up`) binds a match
to it with `tradearena.orchestration.allocation.assign`, and the server acknowledges
by reporting the match's `ServerPhase.READY` on the match's own phase stream, as a
dedicated server does. Capacity 1 is a dedicated server kept warm.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Final

from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.tracing import ASSIGNMENT_FIELD


@dataclass(frozen=True)
class Assignment:
    """One match for a pool server: the match's own settings (everything else, such
    as Redis, keys, ports and TLS, is the server's)."""

    match_id: str
    mode: str
    format: str
    duration_ms: int  # 0: the format's own length
    players: tuple[str, ...]
    symbol: str
    assigned_at_ms: int  # when the allocator bound it (allocation latency is measured from it)
    traceparent: str | None = None  # the match's trace (W3C), when traced

    @classmethod
    def of(cls, spec: MatchSpec, assigned_at_ms: int, traceparent: str | None = None) -> Assignment:
        """`traceparent`: the allocator's span of the match's trace (default: the spec's)."""
        return cls(
            spec.match_id,
            spec.mode,
            spec.format,
            spec.duration_ms,
            tuple(spec.players),
            spec.symbol,
            assigned_at_ms,
            traceparent or spec.traceparent,
        )

    def spec(self) -> MatchSpec:
        return MatchSpec(
            self.match_id,
            self.mode,
            self.format,
            self.duration_ms,
            self.players,
            self.symbol,
            self.traceparent,
        )

    def to_json(self) -> str:
        doc = asdict(self)
        if not self.traceparent:
            del doc[ASSIGNMENT_FIELD]
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Assignment:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            match_id=str(data["match_id"]),
            mode=str(data["mode"]),
            format=str(data["format"]),
            duration_ms=int(data.get("duration_ms") or 0),
            players=tuple(str(p) for p in data["players"]),
            symbol=str(data.get("symbol") or MatchSpec.symbol),
            assigned_at_ms=int(data.get("assigned_at_ms") or 0),
            traceparent=str(data[ASSIGNMENT_FIELD]) if data.get(ASSIGNMENT_FIELD) else None,
        )


class ServerState:
    """Field names of a pool server's state hash (`keys.server_state`)."""

    CAPACITY: Final = "capacity"  # matches it may host at once (its own setting)
    PLAYERS: Final = "players"  # players connected over every hosted match
    READY: Final = "ready"  # "1" once it accepts matches
    DRAINING: Final = "draining"  # "1": accepts no new match (stopping, or told to drain)
    HEARTBEAT_MS: Final = "heartbeat_ms"  # wall-clock ms of its last report
    STARTED_MS: Final = "started_ms"  # when this process started (a restart changes it)


# The inbox stream entry's field: a new assignment to start, or a hosted match to cancel
# (its reason is in `keys.match_cancel` first, as for a dedicated server's SIGTERM).
INBOX_FIELD: Final = "match_id"
INBOX_CANCEL_FIELD: Final = "cancel"
# How often a server rewrites its state hash; a state older than 3x this is stale.
HEARTBEAT_INTERVAL_MS: Final = 2000


class MatchPresence:
    """Fields a match server adds to each match's status hash (`keys.match_status`),
    rewritten at most once a second per match (coalesced)."""

    CONNECTED: Final = "connected"  # players with a live socket now
    PLAYERS: Final = "players"  # players expected in the match
    INTERVAL_MS: Final = 1000
