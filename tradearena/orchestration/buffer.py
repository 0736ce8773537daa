"""How many pool servers to keep: Agones' Buffer policy (a fleet autoscaler that keeps
`buffer` free slots ready), as pure functions with time passed in.

`desired` is the number of servers that hold every hosted match plus `buffer` free
slots, within [min_servers, max_servers]. `plan` compares it with the servers there
are: start the missing ones, or stop surplus servers that host nothing and have been
idle for `idle_stop_s` (so a burst that ends does not stop a server the next burst
needs again at once). Servers being stopped are not passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# The defaults of a local pool (`tradearena up`): one server hosts 50 matches, 10 free
# slots are kept warm, at most 20 servers (1,000 matches) run.
DEFAULT_CAPACITY = 50
DEFAULT_BUFFER = 10
DEFAULT_MAX_SERVERS = 20


@dataclass(frozen=True)
class BufferPolicy:
    capacity: int = DEFAULT_CAPACITY  # matches one server hosts at once
    buffer: int = DEFAULT_BUFFER  # free slots kept ready for the next matches
    min_servers: int = 1
    max_servers: int = DEFAULT_MAX_SERVERS
    idle_stop_s: float = 60.0  # a surplus server is stopped after idling this long

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("capacity must be at least 1")
        if self.buffer < 0:
            raise ValueError("buffer must not be negative")
        if not 0 <= self.min_servers <= self.max_servers or self.max_servers < 1:
            raise ValueError("need 0 <= min_servers <= max_servers and max_servers >= 1")


@dataclass(frozen=True)
class PoolMember:
    """One server of the pool as the policy sees it (in the order they were started)."""

    server_id: str
    count: int  # matches it hosts (or is being given)
    ready: bool = True  # False: still starting (its slots are on the way)
    idle_since: float | None = None  # when it last became empty; None: it hosts matches


@dataclass(frozen=True)
class Plan:
    start: int = 0  # servers to start
    stop: tuple[str, ...] = ()  # idle servers to stop, the newest first


def desired(policy: BufferPolicy, used: int) -> int:
    """Servers needed for `used` hosted matches plus the buffer, within the bounds."""
    need = -(-(used + policy.buffer) // policy.capacity)  # ceiling division
    return max(policy.min_servers, min(policy.max_servers, need))


def free_slots(policy: BufferPolicy, servers: Sequence[PoolMember]) -> int:
    return sum(max(0, policy.capacity - s.count) for s in servers)


def plan(policy: BufferPolicy, servers: Sequence[PoolMember], now: float, pending: int = 0) -> Plan:
    """`pending`: matches waiting for a slot (a burst bigger than the buffer), which need
    servers as much as hosted ones."""
    want = desired(policy, sum(s.count for s in servers) + pending)
    if want > len(servers):
        return Plan(start=want - len(servers))
    surplus = len(servers) - want
    idle = [
        s
        for s in servers
        if s.ready
        and s.count == 0
        and s.idle_since is not None
        and now - s.idle_since >= policy.idle_stop_s
    ]
    return Plan(stop=tuple(s.server_id for s in reversed(idle))[:surplus])
